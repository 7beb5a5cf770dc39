"""What the operator sees before anything is sent: `plan` and `preview`."""
