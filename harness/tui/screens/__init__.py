"""The dashboard's screens: the overview, the gate, the drill-downs, the help and the action
confirmation."""
