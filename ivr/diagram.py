"""Draw the call flow with transitions' diagrams extension (graphviz)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .flow import Flow
from .hotline import Call
from .prompts import Catalogue
from .resources import data_dir

#: a transition from this many states or more is a convention of every menu (* 9 0, silence,
#: invalid), drawn only on request: with them, the picture is all arrows
CONVENTION_SOURCES = 4


def draw(output: Path, *, conventions: bool = False) -> None:
    """Render state_machines/hotline.yaml to `output` (.svg or .png, by its suffix)."""
    from transitions.extensions import GraphMachine

    fmt = output.suffix.lstrip(".").lower()
    if fmt not in ("svg", "png"):
        raise ValueError("the output must end in .svg or .png")
    flow = Flow(data_dir("state_machines") / "hotline.yaml", Call,
                Catalogue.load(data_dir("prompts")))
    kwargs: dict[str, Any] = dict(flow.machine_kwargs)
    title = "12333 hotline call flow"
    if not conventions:
        kwargs["transitions"] = [
            t for t in kwargs["transitions"]
            if isinstance(t["source"], str) or len(t["source"]) < CONVENTION_SOURCES
        ]
        title += (" (in every menu: * repeats, 9 main menu, 0 agent; silence or an invalid"
                  " key replays, the third in a row ends the call or offers an agent)")
    machine = GraphMachine(model=None, graph_engine="graphviz", show_conditions=True,
                           title=title, **kwargs)

    class _Model:
        pass

    model = _Model()
    machine.add_model(model)
    graph = model.get_graph()  # type: ignore[attr-defined]
    output.parent.mkdir(parents=True, exist_ok=True)
    graph.draw(str(output), format=fmt, prog="dot")
