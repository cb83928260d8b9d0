"""The agent's windows on the local desktop (tkinter), run as their own process.

``python -m guruconnect.agent.desktop_ui`` reads one JSON command per line on stdin and
writes one JSON event per line on stdout (see ``guruconnect.agent.desktop``). A process of
its own keeps Tk's main loop and its blocking calls out of the agent's event loop, and a Tk
failure (no display, a crash) cannot take the agent down: it only means nobody can be asked,
which denies consent.

Windows:
- the consent request: who, what (view or control), a countdown; Allow / Deny; the window
  closing or the countdown running out is a denial;
- while a session runs, an indicator that names the technician, with "End session" and
  "Chat";
- the chat window: the conversation and a line to answer.

Every string from the network is shown as text in a Label/Text widget, never interpreted.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import tkinter as tk
from typing import Any

CONSENT_TITLE = "GuruConnect: connection request"
INDICATOR_TITLE = "GuruConnect: session active"
CHAT_TITLE = "GuruConnect: chat"
MAX_SHOWN = 200  # characters of a name shown in a window title or label


def emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def clip(text: object) -> str:
    value = str(text)
    return value if len(value) <= MAX_SHOWN else value[: MAX_SHOWN - 1] + "…"


def scope_words(scope: str) -> str:
    return "see and control" if scope == "control" else "see"


class ConsentDialog:
    def __init__(self, app: DesktopApp, command: dict[str, Any]) -> None:
        self.app = app
        self.session_id = str(command["id"])
        self.remaining = max(1, int(command.get("timeout", 30)))
        self.answered = False
        win = self.window = tk.Toplevel(app.root)
        win.title(CONSENT_TITLE)
        win.attributes("-topmost", True)
        win.resizable(False, False)
        win.protocol("WM_DELETE_WINDOW", lambda: self.answer(False, "dialog closed"))
        frame = tk.Frame(win, padx=18, pady=14)
        frame.pack(fill="both", expand=True)
        technician = clip(command.get("technician", "A technician"))
        tk.Label(
            frame,
            text=f"{technician} wants to {scope_words(command.get('scope', ''))}",
            font=("DejaVu Sans", 12, "bold"),
            wraplength=420,
            justify="left",
        ).pack(anchor="w")
        tk.Label(
            frame, text="this computer. Allow the connection?", wraplength=420, justify="left"
        ).pack(anchor="w", pady=(2, 10))
        self.countdown = tk.Label(frame, text="")
        self.countdown.pack(anchor="w")
        buttons = tk.Frame(frame, pady=10)
        buttons.pack(fill="x")
        self.allow = tk.Button(
            buttons, text="Allow", underline=0, width=10, command=lambda: self.answer(True, "")
        )
        self.allow.pack(side="left")
        self.deny = tk.Button(
            buttons,
            text="Deny",
            underline=0,
            width=10,
            command=lambda: self.answer(False, "denied by the local user"),
        )
        self.deny.pack(side="right")
        # Keyboard answers; Escape denies. Remote input never reaches this dialog: the
        # agent injects nothing before consent is given.
        win.bind("<Alt-a>", lambda _e: self.answer(True, ""))
        win.bind("<Alt-d>", lambda _e: self.answer(False, "denied by the local user"))
        win.bind("<Escape>", lambda _e: self.answer(False, "denied by the local user"))
        self.deny.focus_set()
        app.center(win)
        self.tick()

    def tick(self) -> None:
        if self.answered:
            return
        if self.remaining <= 0:
            self.answer(False, "no answer before the timeout")
            return
        self.countdown.configure(text=f"Denied automatically in {self.remaining} s")
        self.remaining -= 1
        self.window.after(1000, self.tick)

    def answer(self, granted: bool, reason: str) -> None:
        if self.answered:
            return
        self.answered = True
        emit({"event": "consent", "id": self.session_id, "granted": granted, "reason": reason})
        self.close()

    def close(self) -> None:
        self.answered = True
        self.app.consents.pop(self.session_id, None)
        self.window.destroy()


class Indicator:
    def __init__(self, app: DesktopApp, command: dict[str, Any]) -> None:
        self.app = app
        self.session_id = str(command["id"])
        win = self.window = tk.Toplevel(app.root)
        win.title(INDICATOR_TITLE)
        win.attributes("-topmost", True)
        win.resizable(False, False)
        win.protocol("WM_DELETE_WINDOW", self.end)
        frame = tk.Frame(win, padx=12, pady=8, bg="#b00020")
        frame.pack(fill="both", expand=True)
        technician = clip(command.get("technician", "A technician"))
        scope = "controlling" if command.get("scope") == "control" else "viewing"
        tk.Label(
            frame,
            text=f"{technician} is {scope} this computer",
            fg="white",
            bg="#b00020",
            font=("DejaVu Sans", 10, "bold"),
        ).pack(side="left", padx=(0, 12))
        tk.Button(frame, text="Chat", underline=0, command=app.show_chat).pack(side="left")
        tk.Button(frame, text="Send clipboard", command=app.send_clipboard).pack(
            side="left", padx=(6, 0)
        )
        tk.Button(frame, text="End session", underline=0, command=self.end).pack(
            side="left", padx=(6, 0)
        )
        win.bind("<Alt-e>", lambda _e: self.end())
        win.bind("<Alt-c>", lambda _e: app.show_chat())
        win.geometry("+0+0")

    def end(self) -> None:
        emit({"event": "end", "id": self.session_id})

    def close(self) -> None:
        self.window.destroy()


class ChatWindow:
    def __init__(self, app: DesktopApp) -> None:
        win = self.window = tk.Toplevel(app.root)
        win.title(CHAT_TITLE)
        win.protocol("WM_DELETE_WINDOW", win.withdraw)
        self.log = tk.Text(win, width=50, height=14, state="disabled", wrap="word")
        self.log.pack(fill="both", expand=True, padx=8, pady=(8, 4))
        line = tk.Frame(win)
        line.pack(fill="x", padx=8, pady=(0, 8))
        self.entry = tk.Entry(line)
        self.entry.pack(side="left", fill="x", expand=True)
        self.entry.bind("<Return>", lambda _e: self.send())
        tk.Button(line, text="Send", command=self.send).pack(side="right", padx=(6, 0))

    def add(self, sender: str, text: str) -> None:
        self.log.configure(state="normal")
        self.log.insert("end", f"{clip(sender)}: {text}\n")
        self.log.configure(state="disabled")
        self.log.see("end")
        self.window.deiconify()
        self.window.lift()

    def send(self) -> None:
        text = self.entry.get().strip()
        if not text:
            return
        self.entry.delete(0, "end")
        emit({"event": "chat", "text": text})
        self.add("You", text)


class DesktopApp:
    def __init__(self) -> None:
        self.root = tk.Tk()
        self.root.withdraw()
        self.commands: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.consents: dict[str, ConsentDialog] = {}
        self.indicator: Indicator | None = None
        self.chat: ChatWindow | None = None
        self.tray: Any = None  # tray_ui.Tray once the agent asks for one
        threading.Thread(target=self.read_stdin, daemon=True).start()
        self.root.after(20, self.poll)

    def read_stdin(self) -> None:
        for line in sys.stdin:
            try:
                command = json.loads(line)
            except ValueError:
                continue
            if isinstance(command, dict):
                self.commands.put(command)
        self.commands.put(None)  # the agent went away

    def center(self, win: tk.Toplevel) -> None:
        win.update_idletasks()
        x = (win.winfo_screenwidth() - win.winfo_reqwidth()) // 2
        y = (win.winfo_screenheight() - win.winfo_reqheight()) // 3
        win.geometry(f"+{max(0, x)}+{max(0, y)}")

    def show_chat(self) -> ChatWindow:
        if self.chat is None:
            self.chat = ChatWindow(self)
        self.chat.window.deiconify()
        return self.chat

    def start_tray(self, allow_exit: bool) -> None:
        if self.tray is not None:
            return
        from guruconnect.agent.tray_ui import Tray

        try:
            self.tray = Tray(
                self.root,
                allow_exit=allow_exit,
                post=self.commands.put,
                emit=emit,
                show_chat=self.show_chat,
            )
        except Exception as exc:  # no X connection, no pystray backend: no icon, agent runs
            emit({"event": "tray_error", "message": str(exc)[:200]})

    def send_clipboard(self) -> None:
        """The local user chose to share their clipboard text with the technician."""
        try:
            text = self.root.clipboard_get()
        except tk.TclError:
            return  # empty, or not text
        emit({"event": "clipboard", "text": text})

    def poll(self) -> None:
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                break
            if command is None:
                if self.tray is not None:
                    self.tray.stop()
                self.root.destroy()
                return
            self.handle(command)
        self.root.after(20, self.poll)

    def handle(self, command: dict[str, Any]) -> None:
        op = command.get("op")
        if op == "consent":
            session_id = str(command.get("id"))
            if session_id not in self.consents:
                self.consents[session_id] = ConsentDialog(self, command)
        elif op == "consent_cancel":
            dialog = self.consents.get(str(command.get("id")))
            if dialog is not None:
                dialog.close()
        elif op == "session":
            if self.indicator is not None:
                self.indicator.close()
            self.indicator = Indicator(self, command)
            if self.tray is not None:
                self.tray.session(str(command["id"]), clip(command.get("technician", "")))
        elif op == "session_end":
            if self.tray is not None:
                self.tray.session_end()
            if self.indicator is not None:
                self.indicator.close()
                self.indicator = None
            if self.chat is not None:
                self.chat.window.destroy()
                self.chat = None
        elif op == "chat":
            self.show_chat().add(str(command.get("sender", "")), str(command.get("text", "")))
        elif op == "clipboard":
            self.root.clipboard_clear()
            self.root.clipboard_append(str(command.get("text", "")))
        elif op == "tray":
            self.start_tray(bool(command.get("allow_exit")))
        elif op == "status" and self.tray is not None:
            self.tray.status(bool(command.get("connected")), clip(command.get("server", "")))
        elif op == "tray_menu" and self.tray is not None:
            self.tray.open_menu()
        elif op == "tray_ready" and self.tray is not None:
            self.tray.shown()
        elif op == "quit":
            self.root.destroy()
            return
        self.root.update_idletasks()
        emit({"event": "done", "op": op})


def main() -> int:
    try:
        app = DesktopApp()
    except tk.TclError as exc:
        emit({"event": "error", "message": f"no desktop: {exc}"})
        return 1
    emit({"event": "ready"})
    app.root.mainloop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
