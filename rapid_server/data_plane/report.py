"""The platform's log lines that end an invoke: START, END and REPORT (Duration, Billed Duration, Memory
Size, Max Memory Used, Init or Restore Duration, Status), and INIT_REPORT when the invoke found its init
failed (reference section 6). The figures are handed to the metrics as the REPORT has them."""

from __future__ import annotations

from .. import errors, rendering
from .environment_base import EnvironmentBase
from .invocation import InvokeResult, _Outcome


class EnvironmentReport(EnvironmentBase):
    """An invoke's END and REPORT lines, and an init failure's INIT_REPORT."""

    def _log_failed_init(self, request_id: str, outcome: _Outcome) -> None:
        """The invoke that found init failed: INIT_REPORT, then the invoke's own START/END/REPORT."""
        init_ms = self._init_duration_ms or 0.0
        self._sink.platform(
            rendering.init_report_line(
                init_ms,
                # A forked runtime's own failure is its restore's; before it, the template's init failed.
                "restore" if self._template is not None and self._process is not None else "init",
                outcome.status or "error",
                outcome.error_type,
            ),
            request_id=request_id,
        )
        result = outcome.result
        if outcome.status == "timeout":
            message = rendering.timeout_message(request_id, self.config.timeout_s)
            result = InvokeResult(
                rendering.function_error_body(errors.SANDBOX_TIMEDOUT, message), result.content_type, True
            )
        elif not result.body or result.body == b"{}":
            message = rendering.exit_message(request_id, self._exit_text())
            result = InvokeResult(
                rendering.function_error_body(errors.RUNTIME_EXIT_ERROR, message), result.content_type, True
            )
        outcome.result = result
        self._sink.platform(rendering.start_line(request_id, self.config.version), request_id=request_id)
        if outcome.status == "timeout":
            self._sink.platform(
                rendering.timeout_log_line(request_id, self.config.timeout_s), request_id=request_id
            )
        self._sink.platform(rendering.end_line(request_id), request_id=request_id)
        self._sink.platform(
            rendering.report_line(
                request_id,
                0.0,
                self.config.memory_mb,
                self._peak_mb(),
                None,
                outcome.status,
                outcome.error_type,
            )
            + self._report_fields.pop(request_id, ""),
            request_id=request_id,
        )
        self._observe(request_id, 0.0, None, outcome)

    def _log_invoke(self, request_id: str, duration_ms: float, outcome: _Outcome) -> None:
        init_ms = restore_ms = None
        if not self._init_reported:
            # SnapStart: the restore (fork, cgroups, after-restore hooks) is this environment's start.
            if self._template is not None:
                restore_ms = self._init_duration_ms
            else:
                init_ms = self._init_duration_ms
            self._init_reported = True
        report = rendering.report_line(
            request_id,
            duration_ms,
            self.config.memory_mb,
            self._peak_mb(),
            init_ms,
            outcome.status,
            outcome.error_type,
            restore_duration_ms=restore_ms,
        )
        if self._report_fields:
            report += self._report_fields.pop(request_id, "")
        self._sink.platform(rendering.end_line(request_id), report, request_id=request_id)  # one write
        if self._extensions is not None:
            status = outcome.status or ("error" if outcome.result.function_error else "success")
            self._extensions.report(
                request_id,
                status,
                outcome.error_type,
                duration_ms,
                self.config.memory_mb,
                self._peak_mb(),
                init_ms,
            )
        self._observe(request_id, duration_ms, init_ms, outcome)
