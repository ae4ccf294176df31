"""A real RTSP server for the live tests (GStreamer's gst-rtsp-server, from Debian's packages):
serves a live H.264 test pattern at rtsp://127.0.0.1:PORT/cam, so the producer's RTSP *client*
mode (DESCRIBE/SETUP/PLAY against a server) is exercised end to end, not only its arguments.

    /usr/bin/python3 test/live/rtsp-server.py PORT [WIDTHxHEIGHT] [FPS]

Prints "ready" once it listens; runs until killed.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    port = sys.argv[1]
    width, height = (sys.argv[2] if len(sys.argv) > 2 else "320x240").split("x")
    fps = sys.argv[3] if len(sys.argv) > 3 else "10"
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},framerate={fps}/1 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} ! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    # One pipeline for every client: a reconnecting producer joins the same live stream.
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
