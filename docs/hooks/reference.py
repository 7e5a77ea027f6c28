"""MkDocs hook: the CLI and REST references, generated from the code at build time (never copied by hand).

- ``reference/cli.md`` walks the Typer app (:data:`openautoglm.cli.app`): every command and sub-command, its usage
  line, its help and each parameter's help record — the very lines ``openautoglm COMMAND --help`` prints.
- ``reference/rest.md`` reads the FastAPI app's OpenAPI schema (``create_app().openapi()``, what the server serves at
  ``/openapi.json``): every route with its parameters, request body and responses, then every schema's fields.

A command or route added to the code appears on the next ``make docs``; one removed disappears. The functions are
plain (no MkDocs import) so tests/unit/test_docs.py can call them.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

CLI_PAGE = "reference/cli.md"
REST_PAGE = "reference/rest.md"


def _cell(text: Any) -> str:
    """A Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def subcommands(group: Any, ctx: Any) -> list[tuple[str, Any]]:
    """A group's visible sub-commands through click's own protocol (``list_commands``, then ``resolve_command``,
    which builds a lazily registered command, as running it would)."""
    if not hasattr(group, "list_commands"):
        return []
    found = []
    for name in group.list_commands(ctx):
        _, sub, _ = group.resolve_command(ctx, [name])
        if sub is not None and not getattr(sub, "hidden", False):
            found.append((name, sub))
    return found


def cli_reference() -> str:
    """The CLI reference page (Markdown) from the Typer app."""
    import typer

    from openautoglm.cli import app

    root = typer.main.get_command(app)
    context = root.context_class(root, info_name="openautoglm")
    out = [
        "# CLI reference",
        "",
        "Generated from the Typer app (`openautoglm/cli.py`) when the docs are built; `openautoglm COMMAND --help`",
        "prints the same. Worked examples: [Command line](../guide/command-line.md).",
        "",
    ]

    def command(cmd: Any, ctx: Any, depth: int) -> None:
        if depth:
            out.extend([f"{'#' * min(depth + 1, 4)} `{ctx.command_path}`", ""])
        if cmd.help:
            out.extend([cmd.help.strip(), ""])
        out.extend(["```", f"{ctx.command_path} {' '.join(cmd.collect_usage_pieces(ctx))}".rstrip(), "```", ""])
        records = [p.get_help_record(ctx) for p in cmd.get_params(ctx)]
        rows = [r for r in records if r and not r[0].startswith("--help")]
        if rows:
            out.extend(["| parameter | help |", "|---|---|"])
            out.extend(f"| `{_cell(name)}` | {_cell(help_text)} |" for name, help_text in rows)
            out.append("")
        for name, sub in subcommands(cmd, ctx):
            command(sub, sub.context_class(sub, info_name=name, parent=ctx), depth + 1)

    command(root, context, 0)
    return "\n".join(out).rstrip() + "\n"


def _type(schema: dict[str, Any]) -> str:
    """A short type for a JSON Schema: a $ref's name, array[...], a union with |, an enum's values."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " | ".join(_type(s) for s in schema[key])
    if "enum" in schema:
        return " | ".join(repr(v) for v in schema["enum"])
    if schema.get("type") == "array":
        return f"array[{_type(schema.get('items', {}))}]"
    if schema.get("type") == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object[str, {_type(schema['additionalProperties'])}]"
    return str(schema.get("type", "any"))


def _body_type(content: dict[str, Any]) -> str:
    return ", ".join(f"`{kind}`: `{_cell(_type(spec.get('schema', {})))}`" for kind, spec in content.items())


def openapi_schema() -> dict[str, Any]:
    """The API's OpenAPI schema, from an app built with default settings under a throwaway home folder."""
    os.environ["OPENAUTOGLM_HOME"] = tempfile.mkdtemp(prefix="openautoglm-docs-")
    from openautoglm.serve.app import create_app

    return create_app().openapi()


def rest_reference(schema: dict[str, Any] | None = None) -> str:
    """The REST reference page (Markdown) from the OpenAPI schema."""
    schema = schema or openapi_schema()
    info = schema.get("info", {})
    out = [
        "# REST API reference",
        "",
        f"{info.get('title', 'API')} {info.get('version', '')}: generated from the FastAPI app's OpenAPI schema",
        "(`openautoglm.serve.app.create_app().openapi()`, served at `/openapi.json` and browsable at `/docs`) when",
        "the docs are built. How to run it, tokens, roles and limits: [Serve](../deployment/serve.md).",
        "",
        "## Routes",
        "",
    ]
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            out.extend([f"### `{method.upper()} {path}`", ""])
            if op.get("summary"):
                out.extend([f"**{op['summary'].strip()}**", ""])
            if op.get("description"):
                out.extend([op["description"].strip(), ""])
            params = op.get("parameters", [])
            if params:
                out.extend(["| parameter | in | type | required | description |", "|---|---|---|---|---|"])
                for p in params:
                    out.append(
                        f"| `{p['name']}` | {p.get('in', '')} | `{_cell(_type(p.get('schema', {})))}` | "
                        f"{'yes' if p.get('required') else 'no'} | {_cell(p.get('description', ''))} |"
                    )
                out.append("")
            body = op.get("requestBody")
            if body:
                out.extend([f"Request body: {_body_type(body.get('content', {}))}", ""])
            responses = op.get("responses", {})
            if responses:
                out.extend(["| status | description | body |", "|---|---|---|"])
                for status, response in responses.items():
                    out.append(
                        f"| {status} | {_cell(response.get('description', ''))} | "
                        f"{_body_type(response.get('content', {}))} |"
                    )
                out.append("")
    schemas = schema.get("components", {}).get("schemas", {})
    if schemas:
        out.extend(["## Schemas", ""])
    for name, spec in schemas.items():
        out.extend([f"### `{name}`", ""])
        if spec.get("description"):
            out.extend([spec["description"].strip(), ""])
        properties = spec.get("properties", {})
        if properties:
            required = set(spec.get("required", []))
            out.extend(["| field | type | required | default | description |", "|---|---|---|---|---|"])
            for field, prop in properties.items():
                default = f"`{_cell(repr(prop['default']))}`" if "default" in prop else ""
                out.append(
                    f"| `{field}` | `{_cell(_type(prop))}` | {'yes' if field in required else 'no'} | {default} | "
                    f"{_cell(prop.get('description', ''))} |"
                )
            out.append("")
        elif "enum" in spec:
            out.extend([f"One of: {', '.join(f'`{v}`' for v in spec['enum'])}.", ""])
    return "\n".join(out).rstrip() + "\n"


def on_files(files: Any, config: Any) -> Any:
    """MkDocs event: add the two generated pages to the site's files (the nav names them)."""
    from mkdocs.structure.files import File

    for page, content in ((CLI_PAGE, cli_reference()), (REST_PAGE, rest_reference())):
        files.append(File.generated(config, page, content=content))
    return files
