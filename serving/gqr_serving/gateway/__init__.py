"""The recommendation gateway: the API a search front end calls, in front of the LLM servers.

``create_app(settings)`` builds the FastAPI app (``/v1/recommend``, ``/v1/feedback``,
``/v1/stats``, health, metrics, admin); ``gqr-gateway`` (``cli.main``) serves it. See README.md.
"""

from gqr_serving.gateway.app import create_app
from gqr_serving.gateway.settings import GatewaySettings

__all__ = ["GatewaySettings", "create_app"]
