"""The price table the engine ships (`prices.json` beside this module: where its numbers come
from and when they were read is written in it), with `LLM_PRICES_FILE` laid over it model by
model, so an operator fixes a price or adds a model without a release. The worker and the
gateway load it once, at start.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from activities.pricing.models import PriceTable

#: The table shipped with the engine.
DEFAULT_PRICES_FILE = Path(__file__).with_name("prices.json")


def load_prices(override: Path | None = None) -> PriceTable:
    """The shipped table with `override`'s models laid over it (model by model).

    Raises:
        ValueError: a file is not JSON of the table's shape (the message names the file).
    """
    table = _read(DEFAULT_PRICES_FILE)
    if override is not None:
        table.models.update(_read(override).models)
    return table


def _read(path: Path) -> PriceTable:
    try:
        data: Any = json.loads(path.read_text())
        return PriceTable.model_validate({"models": data.get("models")})
    except (OSError, ValueError, AttributeError) as exc:
        raise ValueError(
            f'{path}: not a price table ({{"models": {{name: {{input, output, cached_input}}}}}},'
            f" USD per million tokens): {exc}"
        ) from exc
