"""The control plane: rollout actions (promote, rollback, kill, unkill, breaker reset), status
and the gate's verdict on the store's data, shared by the CLI, the dashboard and the automatic
rollback."""
