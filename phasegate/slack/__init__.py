"""The Slack endpoint: verify the signature, parse the payload, record, answer within three seconds, and do the rest after the answer. HTTP and Socket Mode share the handlers."""
