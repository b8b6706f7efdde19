// DeviceGateway: the CoAP server, MQTT bridge and serial bridge through which devices reach a gateway.
