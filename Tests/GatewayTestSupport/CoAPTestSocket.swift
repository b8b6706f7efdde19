import AmarsTestSupport
import DeviceProtocol
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A plain UDP socket on loopback, standing in for a device that speaks CoAP through DeviceProtocol.
public final class CoAPTestSocket {
    public let fd: Int32
    public let localPort: UInt16

    /// `local` picks the source address (another 127.x.y.z is another device to the rate limiter);
    /// `port` 0 lets the kernel choose.
    public init(local: String = "127.0.0.1", port: UInt16 = 0, timeoutMilliseconds: Int = 3000) throws {
        guard case .success(let fd) = LoopbackSocket.bound(Int32(SOCK_DGRAM.rawValue), host: local, port: port)
        else { throw POSIXError(.EADDRINUSE) }
        self.fd = fd
        localPort = LoopbackSocket.port(of: fd)
        setTimeout(milliseconds: timeoutMilliseconds)
    }

    deinit { Glibc.close(fd) }

    public func setTimeout(milliseconds: Int) {
        var tv = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    public func send(_ bytes: [UInt8], toPort port: UInt16, host: String = "127.0.0.1") {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(host)
        address.sin_port = port.bigEndian
        _ = bytes.withUnsafeBytes { buf in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buf.baseAddress, buf.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    /// One datagram and the port it came from, or nil on timeout.
    public func receive() -> (bytes: [UInt8], port: UInt16)? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let n = buffer.withUnsafeMutableBytes { buf in
            withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(fd, buf.baseAddress, buf.count, 0, $0, &length)
                }
            }
        }
        guard n >= 0 else { return nil }
        return (Array(buffer[0..<n]), UInt16(bigEndian: address.sin_port))
    }

    /// Sends a request and returns the first reply that decodes and matches its token (skipping anything
    /// else, such as late retransmissions), or nil on timeout.
    public func exchange(_ request: CoAPMessage, port: UInt16) -> CoAPMessage? {
        send(request.encode(), toPort: port)
        return receiveMessage { $0.token == request.token && $0.type != .reset }
    }

    public func receiveMessage(where accept: (CoAPMessage) -> Bool = { _ in true }) -> CoAPMessage? {
        while let (bytes, _) = receive() {
            if let m = try? CoAPMessage.decode(bytes, maxMessageSize: 65536), accept(m) { return m }
        }
        return nil
    }
}
