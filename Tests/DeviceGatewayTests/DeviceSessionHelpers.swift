import DeviceClient
import DeviceCore
import DeviceProtocol
import GatewayTestSupport
import LightClient
import XCTest

@testable import DeviceGateway

/// What the device-session tests share: a session anchored over a loopback link to a chain fixture, and the
/// device error an operation ended with.
extension XCTestCase {
    func anchor(_ f: CoAPFixture) -> DeviceTrustAnchor {
        DeviceTrustAnchor(
            genesisHeader: f.genesis.header, committee: f.genesis.committee(epoch: 0),
            epochLength: f.genesis.epochLength)
    }

    /// An anchored session (and the link it anchored over).
    func anchored(
        _ f: CoAPFixture, page: Int = 64, wallet: DeviceWallet? = nil
    ) throws -> (DeviceSession, LoopbackDeviceLink) {
        var session = DeviceSession(
            anchor: anchor(f), wallet: wallet, configuration: .init(checkpointPage: page, pollMillis: 100))
        var link = LoopbackDeviceLink(handlers: f.server.handlers)
        XCTAssertEqual(try session.run(.anchor, over: &link), .anchored)
        return (session, link)
    }

    func deviceError(_ body: () throws -> Void) -> DeviceError? {
        do {
            try body()
            return nil
        } catch let error as DeviceRunError<Never> {
            guard case .device(let e) = error else { return nil }
            return e
        } catch {
            XCTFail("\(error)")
            return nil
        }
    }
}
