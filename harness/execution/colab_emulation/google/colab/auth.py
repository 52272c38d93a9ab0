"""``google.colab.auth``: sign-in needs a person; headlessly it does nothing, and says so."""

from google.colab._colab_ci import record


def authenticate_user(clear_output: bool = True, project_id: str | None = None) -> None:
    record("auth.authenticate_user", "no-op: headless runs have no Google account (use a service account's "
           "credentials through --secret for code that needs one)", project_id=project_id)


def authenticate_service_account(*args: object, **kwargs: object) -> None:
    record("auth.authenticate_service_account", "no-op: headless runs have no Google account")
