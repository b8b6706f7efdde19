// Network: gateway-to-gateway transport (authenticated handshake, framing, gossip, per-peer limits).
