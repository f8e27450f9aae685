"""Which parameter node the panel follows, and when it must (re)connect to it.

Slicer calls the widget's ``enter`` each time the module is shown and ``exit`` when another module is
shown; the scene's close events reset the parameter node. The panel follows its node (GUI binding and
observers) only while it is shown. The same node object comes back after exit/enter, so "is it the
same node?" is not the question; "is it connected?" is. The callbacks are the panel's (Qt); the
bookkeeping here is tested with real MRML nodes.
"""
from __future__ import annotations

from typing import Any, Callable


class ParameterNodeBinding:
    """Connects the panel to one parameter node at a time.

    Args:
        connect: ``connect(node) -> tag``: bind the GUI and observers to ``node`` (``connectGui``).
        disconnect: ``disconnect(node, tag)``: undo ``connect`` (``disconnectGui``, remove observers).
    """

    def __init__(self, connect: Callable[[Any], Any], disconnect: Callable[[Any, Any], None]) -> None:
        self._connect = connect
        self._disconnect = disconnect
        self.node: Any = None
        self._tag: Any = None
        self._connected = False

    @property
    def connected(self) -> bool:
        """True while the panel follows :attr:`node`."""
        return self._connected

    def follow(self, node: Any) -> bool:
        """Follow ``node`` (module entered, scene closed and re-created); returns True when it (re)connected."""
        if node is self.node and self._connected:
            return False
        self.release()
        self.node = node
        if node is not None:
            self._tag = self._connect(node)
            self._connected = True
        return True

    def release(self) -> None:
        """Stop following (module left); :meth:`follow` with the same node connects again."""
        if self._connected:
            self._disconnect(self.node, self._tag)
        self._tag = None
        self._connected = False

    def forget(self) -> None:
        """Stop following and drop the node (the scene is about to close)."""
        self.release()
        self.node = None
