"""The same news in a chat: a POST to a Slack-compatible incoming webhook (``{"text": ...}``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from harness.alert.decide import AlertOutcome
from harness.core.errors import HarnessError
from harness.core.secrets import redact

WEBHOOK_ENV = "COLAB_CI_ALERT_WEBHOOK"
WEBHOOK_TIMEOUT_S = 15.0


def post_webhook(url: str, text: str, timeout_s: float = WEBHOOK_TIMEOUT_S) -> None:
    """POST ``{"text": text}`` (Slack's incoming-webhook shape, which most chat tools accept)."""
    request = urllib.request.Request(url, data=json.dumps({"text": redact(text)}).encode("utf-8"),
                                     method="POST", headers={"Content-Type": "application/json",
                                                             "User-Agent": "colab-ci-alert"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise HarnessError(f"the webhook answered {exc.code}; the issue was updated, the chat message was not sent") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HarnessError(f"the webhook could not be reached ({reason}); the issue was updated, the chat "
                           f"message was not sent") from None


def webhook_text(outcome: AlertOutcome, run_url: str) -> str:
    run = f" Run: {run_url}" if run_url else ""
    if outcome.action == "closed":
        return f"colab-ci is green again; closed {outcome.issue.html_url if outcome.issue else 'the alert issue'}.{run}"
    return f"colab-ci: {outcome.message}.{run}"
