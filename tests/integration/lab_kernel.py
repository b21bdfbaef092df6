"""A user's lab driven the way JupyterLab drives it: the Jupyter Server REST API with the
user's own login cookie and XSRF token, and a kernel over its WebSocket (the Jupyter
messaging protocol, JSON frames). Also the notebook the ds image is judged by.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests
import websocket

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
KERNEL = "python3-ds"

# y = 3 x1 - 2 x2 + 5 (+ small noise): a model fit must find it.
CSV_ROWS = 200


def measurements_csv() -> str:
    lines = ["x1,x2,y"]
    for i in range(CSV_ROWS):
        x1, x2 = i / 10, (i * 7 % 23) / 3
        noise = ((i * 37) % 11 - 5) / 100
        lines.append(f"{x1:.2f},{x2:.4f},{3 * x1 - 2 * x2 + 5 + noise:.4f}")
    return "\n".join(lines) + "\n"


CELLS = [
    # 1. pandas loads the CSV (and polars reads the same file).
    "import pandas as pd, polars as pl\n"
    "df = pd.read_csv('measurements.csv')\n"
    "print('shape', df.shape, 'polars', pl.read_csv('measurements.csv').shape)\n"
    "df[['x1', 'x2']].mean().round(3)",
    # 2. scikit-learn fits a model.
    "from sklearn.linear_model import LinearRegression\n"
    "X, y = df[['x1', 'x2']], df['y']\n"
    "model = LinearRegression().fit(X, y)\n"
    "print(f'R2={model.score(X, y):.6f}')\n"
    "print('coef', *[f'{c:.3f}' for c in model.coef_], f'{model.intercept_:.3f}')",
    # 3. matplotlib draws a figure, shown inline as a PNG.
    "%matplotlib inline\n"
    "import matplotlib.pyplot as plt, seaborn as sns\n"
    "fig, ax = plt.subplots(figsize=(5, 3))\n"
    "sns.scatterplot(x=model.predict(X), y=y, ax=ax)\n"
    "ax.axline((0, 0), slope=1, color='red')\n"
    "ax.set(xlabel='predicted', ylabel='measured', title='measured against predicted')\n"
    "plt.show()",
    # 4. the rest of the stack imports.
    "import numpy, scipy, pyarrow, ipywidgets, sklearn, matplotlib, seaborn\n"
    "print('versions', *(m.__name__ + '=' + m.__version__ for m in\n"
    "      (numpy, scipy, pd, pl, pyarrow, sklearn, matplotlib, seaborn, ipywidgets)))",
]


@dataclass
class Lab:
    """One user's lab through the proxy, with that user's browser session (cookies)."""

    session: requests.Session
    url: str  # .../user/<name>/

    def open(self) -> None:
        """Load the lab page as a browser does: the OAuth hop through the hub sets the
        server's login cookie, and the lab sets its XSRF cookie."""
        r = self.session.get(self.url + "lab", timeout=60)
        assert r.status_code == 200 and "/lab" in r.url, (r.status_code, r.url)

    @property
    def xsrf(self) -> str:
        return next((c.value for c in self.session.cookies if c.name == "_xsrf" and "/user/" in c.path), "")

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"X-XSRFToken": self.xsrf, **kwargs.pop("headers", {})}
        return self.session.request(method, f"{self.url}api/{path}", headers=headers, timeout=60, **kwargs)

    def put_text(self, path: str, text: str) -> None:
        r = self.api("PUT", f"contents/{path}", json={"type": "file", "format": "text", "content": text})
        assert r.status_code in (200, 201), r.text

    def start_session(self, path: str, kernel: str = KERNEL) -> dict:
        """What JupyterLab does when it opens a notebook: a session with a kernel."""
        body = {"path": path, "name": path, "type": "notebook", "kernel": {"name": kernel}}
        r = self.api("POST", "sessions", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def kernel(self, kernel_id: str) -> Kernel:
        ws_url = self.url.replace("http://", "ws://", 1) + f"api/kernels/{kernel_id}/channels"
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.session.cookies)
        sid = uuid.uuid4().hex
        ws = websocket.create_connection(
            f"{ws_url}?session_id={sid}", cookie=cookie, header=[f"X-XSRFToken: {self.xsrf}"], timeout=60
        )
        return Kernel(ws, sid)


@dataclass
class Kernel:
    ws: websocket.WebSocket
    session_id: str
    count: int = field(default=0)

    def execute(self, code: str, timeout: float = 120) -> tuple[dict, list[dict]]:
        """Run one cell: (execute_reply content, its outputs in nbformat v4)."""
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": "execute_request",
            "username": "lab",
            "session": self.session_id,
            "date": datetime.now(UTC).isoformat(),
            "version": "5.3",
        }
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False}
        request = {"header": header, "parent_header": {}, "metadata": {}, "content": content, "channel": "shell"}
        self.ws.send(json.dumps(request))
        outputs: list[dict] = []
        reply: dict | None = None
        idle = False
        deadline = time.monotonic() + timeout
        while not (idle and reply is not None):
            assert time.monotonic() < deadline, f"cell did not finish within {timeout} s: {code!r}"
            msg = json.loads(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, body = msg["msg_type"], msg["content"]
            if msg["channel"] == "shell" and kind == "execute_reply":
                reply = body
            elif kind == "status":
                idle = body["execution_state"] == "idle"
            elif kind in ("stream", "display_data", "execute_result", "error"):
                outputs.append(to_output(kind, body))
        self.count = reply.get("execution_count") or self.count
        return reply, outputs

    def close(self) -> None:
        self.ws.close()


def to_output(kind: str, content: dict) -> dict:
    """An iopub message as a notebook cell output (nbformat v4)."""
    if kind == "stream":
        return {"output_type": "stream", "name": content["name"], "text": content["text"]}
    if kind == "error":
        return {k: content[k] for k in ("ename", "evalue", "traceback")} | {"output_type": "error"}
    output = {"output_type": kind, "data": content["data"], "metadata": content.get("metadata", {})}
    if kind == "execute_result":
        output["execution_count"] = content["execution_count"]
    return output


def notebook(cells: list[tuple[str, int | None, list[dict]]]) -> dict:
    """An nbformat 4.5 notebook of (source, execution count, outputs)."""
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": KERNEL, "display_name": "Python 3 (data science)", "language": "python"},
            "language_info": {"name": "python"},
        },
        "cells": [
            {
                "cell_type": "code",
                "id": uuid.uuid4().hex[:8],
                "source": source,
                "execution_count": count,
                "metadata": {},
                "outputs": outputs,
            }
            for source, count, outputs in cells
        ],
    }


def text_of(outputs: list[dict]) -> str:
    """What a cell printed and returned, as plain text."""
    parts = []
    for out in outputs:
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] in ("execute_result", "display_data"):
            parts.append(out["data"].get("text/plain", ""))
        elif out["output_type"] == "error":
            parts.append(f"{out['ename']}: {out['evalue']}")
    return "".join(parts)


def png_of(outputs: list[dict]) -> bytes:
    """The decoded PNG of a cell's display_data output (fails if there is none)."""
    pngs = [o["data"]["image/png"] for o in outputs if o["output_type"] == "display_data" and "image/png" in o["data"]]
    assert len(pngs) == 1, f"expected one PNG output, got: {[o['output_type'] for o in outputs]}"
    return base64.b64decode(pngs[0])


def run_analysis(lab: Lab, path: str = "analysis.ipynb") -> tuple[dict, list[list[dict]]]:
    """Upload the CSV, open the notebook with the stack's kernel, run every cell and save the
    executed notebook (as JupyterLab does: PUT of the whole notebook). (session, outputs)."""
    lab.put_text("measurements.csv", measurements_csv())
    session = lab.start_session(path)
    assert session["kernel"]["name"] == KERNEL, session
    kernel = lab.kernel(session["kernel"]["id"])
    try:
        results = [kernel.execute(code) for code in CELLS]
    finally:
        kernel.close()
    for (reply, outputs), code in zip(results, CELLS, strict=True):
        assert reply["status"] == "ok", (code, text_of(outputs))
    nb = notebook(
        [(code, reply["execution_count"], outputs) for code, (reply, outputs) in zip(CELLS, results, strict=True)]
    )
    r = lab.api("PUT", f"contents/{path}", json={"type": "notebook", "format": "json", "content": nb})
    assert r.status_code in (200, 201), r.text
    assert not r.json().get("message"), r.json()  # the server found the notebook valid
    return session, [outputs for _, outputs in results]
