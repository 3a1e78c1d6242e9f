"""API Gateway behaviour that Chalice's local gateway does not emulate.

A Lambda (TOKEN) authorizer refuses a request by raising `Exception("Unauthorized")`: API
Gateway then answers 401 `{"message":"Unauthorized"}` itself. Chalice's local gateway lets
that exception escape (a 500 locally), so the dev stack and the tests teach it the real
behaviour here, rather than the app growing an "if local" branch.
"""
from __future__ import annotations

import functools

_INSTALLED = False


def emulate_authorizer_errors() -> None:
    """Turn an authorizer's "Unauthorized" exception into API Gateway's 401 (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from chalice import local

    original = local.LocalGatewayAuthorizer.authorize

    @functools.wraps(original)
    def authorize(self, raw_path, lambda_event, lambda_context):
        try:
            return original(self, raw_path, lambda_event, lambda_context)
        except local.LocalGatewayException:
            raise
        except Exception as err:
            if str(err) != "Unauthorized":
                raise
            raise local.NotAuthorizedError(
                {
                    "x-amzn-RequestId": lambda_context.aws_request_id,
                    "x-amzn-ErrorType": "UnauthorizedException",
                },
                b'{"message":"Unauthorized"}',
            )

    local.LocalGatewayAuthorizer.authorize = authorize
    _INSTALLED = True
