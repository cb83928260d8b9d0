"""Test app: show a picture (a binary PPM) in a borderless window at a given place.

    python picture.py IMAGE.ppm X Y
Prints "ready" once the window is mapped.
"""

import sys
import tkinter as tk

path, x, y = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
root = tk.Tk()
root.overrideredirect(True)
image = tk.PhotoImage(file=path)
label = tk.Label(root, image=image, borderwidth=0, highlightthickness=0, padx=0, pady=0)
label.pack()
root.geometry(f"{image.width()}x{image.height()}+{x}+{y}")


def ready() -> None:
    print("ready", flush=True)


root.after(300, ready)
root.mainloop()
