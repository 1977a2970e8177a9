"""What a waiting room is shown and told: the call screen's content and its texts.

The display role draws and speaks it on the lobby's TVs; the hub's web display page
shows the same in a browser. It imports neither pygame nor serial, only the MQTT
protocol's messages it is fed with.
"""
