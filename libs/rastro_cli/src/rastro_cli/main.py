"""The ``rastro`` command. Each area adds its own sub-app here: ``app.add_typer(x_app, name="x")``."""

from __future__ import annotations

import typer

from rastro_cli.audit import audit_app
from rastro_cli.devstack.cli import dev_app, topics_app
from rastro_cli.dlq import dlq_app
from rastro_cli.imports import import_file
from rastro_cli.privacy import privacy_app
from rastro_cli.proof import check_command, loadgen_command
from rastro_cli.retention import retention_app
from rastro_cli.tenants import keys_app, tenants_app
from rastro_eta.cli import eta_app

__all__ = ["app"]

app = typer.Typer(
    name="rastro", help="Rastro: self-hosted shipment-tracking event hub.", no_args_is_help=True
)
app.add_typer(dev_app, name="dev")
app.add_typer(topics_app, name="topics")
app.command(name="import")(import_file)
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
app.command(name="loadgen")(loadgen_command)
app.command(name="check")(check_command)
app.add_typer(dlq_app, name="dlq")
app.add_typer(eta_app, name="eta")
app.add_typer(audit_app, name="audit")
app.add_typer(privacy_app, name="privacy")
app.add_typer(retention_app, name="retention")
