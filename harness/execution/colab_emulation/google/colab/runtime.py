"""``google.colab.runtime``: releasing the runtime ends the kernel's session on Colab; headlessly, a no-op."""

from google.colab._colab_ci import record


def unassign() -> None:
    record("runtime.unassign", "no-op: the headless run ends its kernel itself")
