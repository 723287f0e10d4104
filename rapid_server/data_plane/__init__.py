"""The data plane: execution environments and what runs them (a function's pool of environments, the
runtime's process, its cgroup and limits, its output and the REPORT it ends with, the Runtime API it polls).

It knows nothing of the front doors that ask it for invokes (the Invoke API, HTTP triggers, the control
plane) nor of templates: they hand it a `FunctionConfig` and an `Invocation`."""
