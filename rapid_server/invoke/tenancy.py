"""Tenant isolation (`TenancyConfig.TenantIsolationMode = PER_TENANT`), as the Invoke API checks it.

A function created with tenant isolation takes only invokes that name a tenant (`X-Amz-Tenant-Id`, botocore's
`InvocationRequest.TenantId`); each tenant's invokes run in environments of their own (`Function` keeps a
pool per tenant), and the runtime is told the tenant (`Lambda-Runtime-Aws-Tenant-Id`, `context.tenant_id`).

A function without tenant isolation refuses a tenant id rather than ignore it: a caller who believes its
tenants are kept apart, and they are not, should hear so at the first invoke.
"""

from __future__ import annotations

import re

from .. import errors
from ..config import FunctionConfig
from ..errors import ServiceError

HEADER = "x-amz-tenant-id"
PER_TENANT = "PER_TENANT"  # the only TenantIsolationMode (botocore's enum)
# botocore's `TenantId` shape: 1-256 characters of this pattern.
_TENANT_ID = re.compile(r"[a-zA-Z0-9._:/=+\-@ ]{1,256}", re.ASCII)


def tenant_id(config: FunctionConfig, header: str | None) -> str | None:
    """The invoke's tenant, or a 400 naming what is wrong; None for a function without isolation."""
    if not config.tenant_isolation:
        if header is not None:
            raise ServiceError(
                400,
                errors.INVALID_PARAMETER_VALUE,
                f"X-Amz-Tenant-Id: function {config.name} is not configured for tenant isolation "
                "(TenancyConfig), so an invoke of it cannot name a tenant",
            )
        return None
    if header is None or not header:
        raise ServiceError(
            400,
            errors.INVALID_PARAMETER_VALUE,
            f"X-Amz-Tenant-Id: required: function {config.name} has TenancyConfig.TenantIsolationMode "
            f"{PER_TENANT}, so every invoke must name its tenant",
        )
    if _TENANT_ID.fullmatch(header) is None:
        raise ServiceError(
            400,
            errors.INVALID_PARAMETER_VALUE,
            f"X-Amz-Tenant-Id: {header[:300]!r} must be 1-256 characters of letters, digits and ._:/=+-@ "
            "or space",
        )
    return header


def tenancy_setting(value: object) -> bool:
    """CreateFunction's `TenancyConfig`: True for PER_TENANT, False when absent; anything else is refused."""
    if value is None:
        return False
    mode = value.get("TenantIsolationMode") if isinstance(value, dict) else None
    if mode != PER_TENANT:
        raise ServiceError(
            400,
            errors.INVALID_PARAMETER_VALUE,
            f"TenancyConfig.TenantIsolationMode: {mode!r} is not a tenant isolation mode ({PER_TENANT})",
        )
    return True
