"""What batchctl gives the Celery worker processes it starts itself (the local backend).

The broker URL travels in the environment, never on the command line, so a password
never shows in `ps`. `CELERY_BROKER_URL` is Celery's own: it overrides the app's
`broker_url` (celery.app.utils.Settings.broker_url), so any app works unchanged. An
app that uses kombu's `global_keyprefix` reads `BATCHCTL_BROKER_KEYPREFIX` into its
`broker_transport_options`.
"""

ENV_BROKER_URL = "CELERY_BROKER_URL"
ENV_KEYPREFIX = "BATCHCTL_BROKER_KEYPREFIX"
