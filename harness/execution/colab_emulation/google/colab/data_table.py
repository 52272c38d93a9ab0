"""``google.colab.data_table``: interactive tables are a browser feature; DataFrames display as usual."""

from google.colab._colab_ci import record


def enable_dataframe_formatter() -> None:
    record("data_table.enable_dataframe_formatter", "no-op: DataFrames display as plain HTML tables")


def disable_dataframe_formatter() -> None:
    record("data_table.disable_dataframe_formatter", "no-op")


class DataTable:
    def __init__(self, dataframe: object, **kwargs: object) -> None:
        record("data_table.DataTable", "shown as the DataFrame's own HTML")
        self.dataframe = dataframe

    def _repr_html_(self) -> str:
        html = getattr(self.dataframe, "_repr_html_", None)
        return html() if callable(html) else f"<pre>{self.dataframe!r}</pre>"
