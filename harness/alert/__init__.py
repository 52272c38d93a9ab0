"""The alert: one GitHub issue kept in step with the scheduled (and dispatched) runs.

``decide.py`` decides (open, comment, close), ``marker.py`` keeps the issue's state in the issue,
``texts.py`` writes its body and comments, ``github.py`` is the REST client, ``webhook.py`` the chat
message. The ``alert`` verb is harness/cli/alert.py.
"""
