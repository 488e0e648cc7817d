"""Shader-node helpers shared by the finish and degradation recipes: math on sockets or numbers,
noise over a vector, re-routing a Principled BSDF input through a new node."""

from __future__ import annotations

from typing import Any


def math_node(material: Any, operation: str, a: Any, b: Any = 0.0) -> Any:
    """The Value output of a Math node ``operation`` over ``a`` and ``b`` (sockets or numbers)."""
    node = material.node_tree.nodes.new("ShaderNodeMath")
    node.operation = operation
    for socket, value in zip(node.inputs, (a, b)):
        if isinstance(value, (int, float)):
            socket.default_value = float(value)
        else:
            material.node_tree.links.new(value, socket)
    return node.outputs["Value"]


def noise(material: Any, where: Any, scale: float, stretch: tuple[float, float, float] | None = None,
          detail: float = 4.0, distortion: float = 0.0) -> Any:
    """The Noise Texture node over ``where`` (optionally scaled per axis first)."""
    nodes, links = material.node_tree.nodes, material.node_tree.links
    node = nodes.new("ShaderNodeTexNoise")
    node.inputs["Scale"].default_value = scale
    node.inputs["Detail"].default_value = detail
    node.inputs["Distortion"].default_value = distortion
    if stretch is not None:
        scaled = nodes.new("ShaderNodeVectorMath")
        scaled.operation = "MULTIPLY"
        scaled.inputs[1].default_value = stretch
        links.new(where, scaled.inputs[0])
        where = scaled.outputs["Vector"]
    links.new(where, node.inputs["Vector"])
    return node


def reroute_input(material: Any, name: str, into: Any, result: Any) -> None:
    """Feed what drives the Principled BSDF's input ``name`` (a link or its value) into the socket
    ``into``, and drive the input by ``result`` instead."""
    links, target = material.node_tree.links, material.node_tree.nodes["Principled BSDF"].inputs[name]
    if target.is_linked:
        links.new(target.links[0].from_socket, into)
    else:
        value = target.default_value
        into.default_value = tuple(value)[: len(into.default_value)] if hasattr(value, "__len__") else value
    links.new(result, target)
