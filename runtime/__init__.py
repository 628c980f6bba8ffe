"""Runtime: executes compiled artifacts (or the reference interpreter) over a Session's buffers."""
