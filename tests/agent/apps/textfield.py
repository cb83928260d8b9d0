"""Test app: a window with a text field; every change of its text, and every mouse click
on the window, is printed as one line on stdout ("text <repr>", "click X Y BUTTON").

    python textfield.py TITLE X Y WIDTH HEIGHT
"""

import sys
import tkinter as tk

title, x, y, width, height = sys.argv[1], *map(int, sys.argv[2:6])
root = tk.Tk()
root.title(title)
root.overrideredirect(True)
root.geometry(f"{width}x{height}+{x}+{y}")
text = tk.Text(root, font=("DejaVu Sans Mono", 14))
text.pack(fill="both", expand=True)


def changed(_event: object) -> None:
    if text.edit_modified():
        print("text", repr(text.get("1.0", "end-1c")), flush=True)
        text.edit_modified(False)


def clicked(event: tk.Event) -> None:
    print("click", event.x_root, event.y_root, event.num, flush=True)


def key(event: tk.Event) -> None:
    print("key", event.keysym, flush=True)


text.bind("<<Modified>>", changed)
text.bind("<KeyPress>", key, add=True)
for button in (1, 2, 3):
    text.bind(f"<ButtonPress-{button}>", clicked, add=True)
text.focus_force()
root.after(300, lambda: print("ready", flush=True))
root.mainloop()
