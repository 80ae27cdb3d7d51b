"""The MCP server at /mcp: agents start deep research and collect it later (docs/mcp.md).

Named ``mcpserver`` so that it can never shadow the ``mcp`` SDK it is built on.
"""
