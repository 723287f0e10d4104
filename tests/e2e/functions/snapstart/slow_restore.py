"""An after-restore hook that never returns: past the restore limit, SnapStartTimeoutException."""

import select

from snapshot_restore_py import register_after_restore


@register_after_restore
def wait_forever():
    select.select([], [], [])


def handler(event, context):
    return "never reached"
