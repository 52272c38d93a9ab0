"""``google.colab.output``: the browser side of Colab's outputs; headlessly each call is a recorded no-op."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from google.colab._colab_ci import record


def clear(wait: bool = False, output_tags: Any = ()) -> None:
    from IPython.display import clear_output

    record("output.clear", "cleared the cell's output")
    clear_output(wait=wait)


def eval_js(script: str, ignore_result: bool = False, timeout_sec: float | None = None) -> None:
    record("output.eval_js", "not run: there is no browser; returned None", script=script[:200])
    return None


def enable_custom_widget_manager() -> None:
    record("output.enable_custom_widget_manager", "no-op: widgets render through the Jupyter widget manager")


def disable_custom_widget_manager() -> None:
    record("output.disable_custom_widget_manager", "no-op")


def no_vertical_scroll() -> None:
    record("output.no_vertical_scroll", "no-op: there is no page to scroll")


def register_callback(function_name: str, callback: Callable[..., Any]) -> None:
    record("output.register_callback", f"registered {function_name}; nothing in a headless run calls it",
           name=function_name)


def serve_kernel_port_as_iframe(port: int, path: str = "/", height: int = 400, cache_in_notebook: bool = False,
                                anchor_text: str | None = None) -> None:
    record("output.serve_kernel_port_as_iframe", f"no-op: nothing proxies port {port} headlessly", port=port)


def serve_kernel_port_as_window(port: int, path: str = "/", anchor_text: str | None = None) -> None:
    record("output.serve_kernel_port_as_window", f"no-op: nothing proxies port {port} headlessly", port=port)


def redirect_to_element(selector: str) -> contextlib.AbstractContextManager[None]:
    record("output.redirect_to_element", "outputs stay in the cell", selector=selector)
    return contextlib.nullcontext()


@contextlib.contextmanager
def use_tags(tags: Any, append: bool = True) -> Iterator[None]:
    yield


@contextlib.contextmanager
def temporary() -> Iterator[None]:
    yield


def __getattr__(name: str) -> Any:
    raise AttributeError(f"google.colab.output.{name} is not emulated by colab-ci's headless google.colab; "
                         "guard the call, or ask for it at https://github.com/transformer-builder/colab-ci/issues")
