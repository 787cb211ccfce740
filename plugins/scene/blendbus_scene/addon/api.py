"""The connected Blender's own Python API, read from its live RNA: exact for the version running.

An LLM that writes bpy for another Blender version than the one it talks to fails; these handlers
answer from the running Blender instead of from memory. Runs inside Blender (bpy only).
"""

from __future__ import annotations

import difflib
import functools
from typing import Any

import bpy

DEFAULT_LIMIT = 50


def _value(value: Any) -> Any:
    """An RNA default as JSON: vectors to lists, sets to sorted lists."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    try:
        return [_value(v) for v in value]
    except TypeError:
        return str(value)


def describe_property(prop: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"identifier": prop.identifier, "name": prop.name, "type": prop.type,
                            "description": prop.description, "read_only": prop.is_readonly}
    if prop.subtype not in ("NONE", ""):
        info["subtype"] = prop.subtype
    if getattr(prop, "array_length", 0):
        info["array_length"] = prop.array_length
    if prop.type == "ENUM":
        info["enum_items"] = [item.identifier for item in prop.enum_items]
        info["default"] = _value(prop.default_flag if prop.is_enum_flag else prop.default)
    elif prop.type == "POINTER" or prop.type == "COLLECTION":
        info["fixed_type"] = prop.fixed_type.identifier if prop.fixed_type else None
    elif getattr(prop, "is_array", False) and getattr(prop, "array_length", 0):
        info["default"] = _value(prop.default_array)
    elif hasattr(prop, "default"):
        info["default"] = _value(prop.default)
    for bound in ("hard_min", "hard_max"):
        if hasattr(prop, bound) and prop.type in ("INT", "FLOAT"):
            info[bound.removeprefix("hard_")] = getattr(prop, bound)
    return info


def _function(fn: Any) -> dict[str, Any]:
    params = [describe_property(p) for p in fn.parameters if not p.is_output]
    returns = [describe_property(p) for p in fn.parameters if p.is_output]
    return {"identifier": fn.identifier, "description": fn.description, "parameters": params, "returns": returns}


def _page(items: list[Any], offset: int, limit: int) -> dict[str, Any]:
    end = offset + limit
    return {"items": items[offset:end], "total": len(items), "offset": offset,
            "next_offset": end if end < len(items) else None}


@functools.cache
def _structs() -> dict[str, Any]:
    return {name: cls for name in dir(bpy.types) if hasattr(cls := getattr(bpy.types, name), "bl_rna")}


@functools.cache
def _operators() -> dict[str, Any]:
    found = {}
    for module in dir(bpy.ops):
        if module.startswith("_"):
            continue
        for name in dir(getattr(bpy.ops, module)):
            if not name.startswith("_"):
                found[f"{module}.{name}"] = getattr(getattr(bpy.ops, module), name)
    return found


def _operator_rna(op: Any) -> Any | None:
    try:  # hasattr(bpy.ops.x, "y") is always true: only get_rna_type() tells whether it exists
        return op.get_rna_type()
    except (KeyError, AttributeError, RuntimeError):
        return None


def _not_found(kind: str, name: str, known: list[str]) -> LookupError:
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    hint = f"; close matches: {', '.join(close)}" if close else "; try search=..."
    return LookupError(f"this Blender ({bpy.app.version_string}) has no {kind} {name!r}{hint}")


def _lookup_struct(name: str, member: str | None, offset: int, limit: int) -> dict[str, Any]:
    cls = _structs().get(name)
    if cls is None:
        raise _not_found("type", f"bpy.types.{name}", [f"bpy.types.{n}" for n in _structs()])
    rna = cls.bl_rna
    if member is not None:
        if member in rna.properties:
            return {"kind": "property", "owner": f"bpy.types.{name}", **describe_property(rna.properties[member])}
        if member in rna.functions:
            return {"kind": "function", "owner": f"bpy.types.{name}", **_function(rna.functions[member])}
        members = [p.identifier for p in rna.properties] + [f.identifier for f in rna.functions]
        raise _not_found("member", f"bpy.types.{name}.{member}", [f"bpy.types.{name}.{m}" for m in members])
    props = [describe_property(p) for p in rna.properties if p.identifier != "rna_type"]
    functions = [_function(f) for f in rna.functions]
    return {"kind": "struct", "identifier": f"bpy.types.{name}", "description": rna.description,
            "base": f"bpy.types.{rna.base.identifier}" if rna.base else None,
            "properties": _page(props, offset, limit), "functions": _page(functions, offset, limit)}


def _lookup_operator(name: str, offset: int, limit: int) -> dict[str, Any]:
    op = _operators().get(name)
    rna = _operator_rna(op) if op is not None else None
    if rna is None:
        raise _not_found("operator", f"bpy.ops.{name}", [f"bpy.ops.{n}" for n in _operators()])
    params = [describe_property(p) for p in rna.properties if p.identifier != "rna_type"]
    return {"kind": "operator", "identifier": f"bpy.ops.{name}", "name": rna.name, "description": rna.description,
            "parameters": _page(params, offset, limit)}


def _search(query: str, offset: int, limit: int) -> dict[str, Any]:
    words = query.lower().split()
    hits = []
    for name, cls in _structs().items():
        text = f"{name} {cls.bl_rna.name} {cls.bl_rna.description}".lower()
        if all(w in text for w in words):
            hits.append({"identifier": f"bpy.types.{name}", "kind": "struct", "description": cls.bl_rna.description})
    for name, op in _operators().items():
        if not all(w in name.lower() for w in words):  # operators: matched by name (RNA per operator is costly)
            continue
        rna = _operator_rna(op)
        if rna is not None:
            hits.append({"identifier": f"bpy.ops.{name}", "kind": "operator", "description": rna.description})
    hits.sort(key=lambda h: (not any(w in h["identifier"].lower() for w in words), h["identifier"]))
    return {"kind": "search", "query": query, "blender": bpy.app.version_string, "results": _page(hits, offset, limit)}


def lookup_api(identifier: str | None = None, search: str | None = None, offset: int = 0,
               limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    if (identifier is None) == (search is None):
        raise ValueError("pass identifier (such as 'bpy.types.Object' or 'bpy.ops.mesh.primitive_cube_add')"
                         " or search (such as 'subdivision'), not both")
    if search is not None:
        return _search(search, offset, limit)
    ident = identifier.strip().removeprefix("bpy.")
    if ident.startswith("ops."):
        answer = _lookup_operator(ident.removeprefix("ops."), offset, limit)
    else:
        parts = ident.removeprefix("types.").split(".")
        if len(parts) > 2:
            raise ValueError(f"{identifier!r}: look up a type, a member of one, or an operator")
        answer = _lookup_struct(parts[0], parts[1] if len(parts) == 2 else None, offset, limit)
    return {"blender": bpy.app.version_string, **answer}


def _socket(sock: Any) -> dict[str, Any]:
    info = {"name": sock.name, "identifier": sock.identifier, "type": sock.bl_idname}
    if hasattr(sock, "default_value"):
        info["default"] = _value(sock.default_value)
    return info


def describe_node_type(node_type: str, tree_type: str | None = None) -> dict[str, Any]:
    trees = ("ShaderNodeTree", "GeometryNodeTree", "CompositorNodeTree", "TextureNodeTree")
    tree_type = tree_type or next((t for t in trees if node_type.startswith(t.removesuffix("Tree"))), "ShaderNodeTree")
    if tree_type not in trees:
        raise ValueError(f"tree_type must be one of {', '.join(trees)}")
    nodes = [n for n, cls in _structs().items() if issubclass(cls, bpy.types.Node) and n not in ("Node",)]
    if node_type not in nodes:
        raise _not_found("node type", node_type, nodes)
    tree = bpy.data.node_groups.new("blendbus_describe", tree_type)
    try:
        try:
            node = tree.nodes.new(node_type)
        except RuntimeError as exc:
            raise ValueError(f"{node_type} cannot go in a {tree_type}: {exc}") from None
        base = {p.identifier for p in bpy.types.Node.bl_rna.properties}
        props = [describe_property(p) for p in node.bl_rna.properties if p.identifier not in base]
        return {"blender": bpy.app.version_string, "node_type": node_type, "tree_type": tree_type,
                "name": node.bl_rna.name, "description": node.bl_rna.description,
                "inputs": [_socket(s) for s in node.inputs], "outputs": [_socket(s) for s in node.outputs],
                "properties": props}
    finally:
        bpy.data.node_groups.remove(tree)


NODE_TREE_PREFIXES = {"ShaderNodeTree": "ShaderNode", "GeometryNodeTree": "GeometryNode",
                      "CompositorNodeTree": "CompositorNode", "TextureNodeTree": "TextureNode"}


def list_node_types() -> dict[str, Any]:
    """The node types (bl_idname) this Blender has, in every kind of tree: what describe_node_type and
    `nodes.new` take. Abstract bases (ShaderNode, GeometryNode, ...) are left out."""
    prefixes = tuple(NODE_TREE_PREFIXES.values())
    bases = {*prefixes, "Node", "NodeInternal", "FunctionNode"}
    names = sorted(name for name, cls in _structs().items()
                   if issubclass(cls, bpy.types.Node) and name not in bases and name.startswith(prefixes))
    return {"blender": bpy.app.version_string, "items": names}
