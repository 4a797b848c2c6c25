"""The Slack endpoint: verify the signature, read the request through the one way in
(`phasegate.slack.inbound`: shape, identity, policy, values), record, answer within three seconds, and
do the rest after the answer. HTTP and Socket Mode share the way in and the handlers."""
