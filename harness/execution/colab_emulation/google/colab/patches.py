"""``google.colab.patches``: ``cv2_imshow`` shows the image as a PNG output, as on Colab."""

from __future__ import annotations

from typing import Any


def cv2_imshow(image: Any) -> None:
    import cv2
    from IPython.display import Image, display

    ok, encoded = cv2.imencode(".png", image.clip(0, 255).astype("uint8"))
    if ok:
        display(Image(data=encoded.tobytes()))
