"""The fixed markers of the prompt and response layout, defined once for template and parser."""

from __future__ import annotations

import re

SEP = "<SEP>"
# What joins queries in a rendered response; the parser accepts any spacing and case.
SEP_JOIN = f" {SEP} "
SEP_RE = re.compile(r"<\s*sep\s*>", re.IGNORECASE)
# Plain-text prompts end with this header; the completion follows it.
RESPONSE_OPEN = "<response>"
RESPONSE_CLOSE = "</response>"
# Auxiliary texts are written one per line as "name: text" before the query line.
AUX_LINE = "{name}: {text}"
