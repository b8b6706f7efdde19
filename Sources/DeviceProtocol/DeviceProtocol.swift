// DeviceProtocol: the CoAP, block-wise, Observe and SLIP codecs shared by devices and gateways.
