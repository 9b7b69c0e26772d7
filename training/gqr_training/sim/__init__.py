"""The simulated world: users, sessions and a hidden click model, for demos, tests and honest
measurement (true CTRs and the oracle list). Learning code must never import it."""

from gqr_contracts.reward import Component
from gqr_contracts.reward import list_reward as list_ctr
from gqr_training.sim._clickmodel import ClickParams
from gqr_training.sim.policies import AnnotatorPolicy, CooccurrencePolicy, OraclePolicy, Policy
from gqr_training.sim.sessions import TASKS, Request, TaskSpec
from gqr_training.sim.universe import ParsedQuery, Universe
from gqr_training.sim.world import World

__all__ = [
    "TASKS",
    "AnnotatorPolicy",
    "ClickParams",
    "Component",
    "CooccurrencePolicy",
    "OraclePolicy",
    "ParsedQuery",
    "Policy",
    "Request",
    "TaskSpec",
    "Universe",
    "World",
    "list_ctr",
]
