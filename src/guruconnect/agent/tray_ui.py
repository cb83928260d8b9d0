"""The tray icon of the installed agent (pystray, X11 backend), inside the desktop windows'
process (``desktop_ui``).

The icon's title, which a tray shows as its tooltip and which is the icon window's name,
says the state: ``GuruConnect: connected to HOST:PORT``, ``GuruConnect: offline`` or
``GuruConnect: session in progress with NAME``; its colour follows (green, grey, red).
pystray's X11 backend has no menus (a click runs the default action), so a click opens a
small window, the menu: Open chat, End session, and Exit where the policy allows it (not on
an unattended machine, which its owner runs for the technician).
"""

from __future__ import annotations

import os
import sys
import tkinter as tk
from collections.abc import Callable
from typing import Any

from PIL import Image, ImageDraw

MENU_TITLE = "GuruConnect menu"
ICON_PIXELS = 24
COLOURS = {"connected": "#1b8a3a", "offline": "#777777", "session": "#b00020"}


def title_of(state: str, server: str = "", technician: str = "") -> str:
    if state == "session":
        return f"GuruConnect: session in progress with {technician or 'a technician'}"[:200]
    if state == "connected":
        return f"GuruConnect: connected to {server}"[:200]
    return "GuruConnect: offline"


def icon_image(state: str) -> Image.Image:
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((4, 4, 60, 60), fill=COLOURS.get(state, COLOURS["offline"]))
    draw.rectangle((26, 16, 38, 48), fill="white")
    return image


def _fix_xorg_window(icon: Any) -> None:
    """Two gaps of pystray 0.19's X11 backend, closed before its thread starts (Xlib is not
    thread-safe): its icon window does not select button presses, so a click never reaches
    it, and it is 1x1 pixels, which a tray sized by request (trayer) keeps 1 pixel wide."""
    window = getattr(icon, "_window", None)
    display = getattr(icon, "_display", None)
    if window is None or display is None:
        return  # another backend
    import Xlib.X

    window.change_attributes(
        event_mask=Xlib.X.ExposureMask | Xlib.X.StructureNotifyMask | Xlib.X.ButtonPressMask
    )
    window.configure(width=ICON_PIXELS, height=ICON_PIXELS)
    display.flush()


class Tray:
    """The icon and its menu window; every method runs on the Tk thread."""

    def __init__(
        self,
        root: tk.Tk,
        *,
        allow_exit: bool,
        post: Callable[[dict[str, Any]], None],
        emit: Callable[[dict[str, Any]], None],
        show_chat: Callable[[], object],
    ) -> None:
        if sys.platform.startswith("linux"):
            # The X11 backend: the one that works with any freedesktop tray (trayer,
            # stalonetray, panels) without GTK or AppIndicator.
            os.environ.setdefault("PYSTRAY_BACKEND", "xorg")
        import pystray

        self.root = root
        self.allow_exit = allow_exit
        self.emit = emit
        self.show_chat = show_chat
        self.state = "offline"
        self.server = ""
        self.technician = ""
        self.session_id = ""
        self.menu: tk.Toplevel | None = None
        #: pystray drops a title set before the icon is visible: until then only remember.
        self.ready = False
        # The click arrives on pystray's thread; ``post`` hands it to the Tk thread.
        item = pystray.MenuItem("Menu", lambda: post({"op": "tray_menu"}), default=True)
        self.icon = pystray.Icon(
            "guruconnect", icon_image(self.state), title_of(self.state), pystray.Menu(item)
        )

        _fix_xorg_window(self.icon)

        def setup(icon: Any) -> None:
            icon.visible = True
            post({"op": "tray_ready"})

        self.icon.run_detached(setup)

    def shown(self) -> None:
        """The icon is visible: apply the state that arrived meanwhile."""
        self.ready = True
        self._show(self.state)

    def status(self, connected: bool, server: str) -> None:
        self.server = server
        if self.state != "session" or not connected:
            self.session_id = "" if not connected else self.session_id
            self._show("connected" if connected else "offline")

    def session(self, session_id: str, technician: str) -> None:
        self.session_id, self.technician = session_id, technician
        self._show("session")

    def session_end(self) -> None:
        self.session_id = ""
        if self.state == "session":
            self._show("connected")

    def _show(self, state: str) -> None:
        self.state = state
        if self.ready:
            self.icon.icon = icon_image(state)
            self.icon.title = title_of(state, self.server, self.technician)
        if self.menu is not None:
            self.open_menu()  # redraw with the new state

    def open_menu(self) -> None:
        if self.menu is not None:
            self.menu.destroy()
        win = self.menu = tk.Toplevel(self.root)
        win.title(MENU_TITLE)
        win.attributes("-topmost", True)
        win.resizable(False, False)
        win.protocol("WM_DELETE_WINDOW", self.close_menu)
        frame = tk.Frame(win, padx=12, pady=10)
        frame.pack(fill="both", expand=True)
        tk.Label(frame, text=title_of(self.state, self.server, self.technician)).pack(
            anchor="w", pady=(0, 8)
        )
        in_session = self.state == "session"
        tk.Button(frame, text="Open chat", underline=0, command=self._chat).pack(fill="x")
        tk.Button(
            frame,
            text="End session",
            underline=0,
            command=self._end,
            state="normal" if in_session else "disabled",
        ).pack(fill="x", pady=(4, 0))
        if self.allow_exit:
            tk.Button(frame, text="Exit GuruConnect", underline=1, command=self._exit).pack(
                fill="x", pady=(4, 0)
            )
        win.bind("<Alt-o>", lambda _e: self._chat())
        win.bind("<Alt-e>", lambda _e: self._end())
        win.bind("<Alt-x>", lambda _e: self._exit())
        win.bind("<Escape>", lambda _e: self.close_menu())
        win.geometry("-0+40")

    def close_menu(self) -> None:
        if self.menu is not None:
            self.menu.destroy()
            self.menu = None

    def _chat(self) -> None:
        self.close_menu()
        self.show_chat()

    def _end(self) -> None:
        if self.state == "session" and self.session_id:
            self.emit({"event": "end", "id": self.session_id})
        self.close_menu()

    def _exit(self) -> None:
        if self.allow_exit:
            self.close_menu()
            self.emit({"event": "exit"})

    def stop(self) -> None:
        self.close_menu()
        self.icon.stop()
