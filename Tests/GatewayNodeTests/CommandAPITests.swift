import AmarsCodec
import AmarsCrypto
import Chain
import DeviceCore
import DeviceGateway
import Foundation
import GatewayNode
import Ledger
import Logging
import XCTest

/// `POST /v1/commands` and `GET /v1/commands/{address}` on the router: each refusal with its status and code,
/// nothing queued by a refused request, and a gateway without a door saying so. (Accepted commands, and a bulb
/// obeying them, are `CommandDoorTests` and the simulator's smoke test against a real gateway.)
final class CommandAPITests: XCTestCase {
    func testTheCommandDoorRefusesWhatAStrangerShouldNotQueue() throws {
        let chain = try TestChain()
        defer { chain.close() }
        let door = CommandDoor(node: chain.node)
        let router = APIRouter(node: chain.node, logger: Logger(label: "t"), commands: door)
        func post(_ body: [UInt8], _ type: String? = "application/octet-stream") -> (Int, String) {
            let r = router.handle(method: "POST", uri: "/v1/commands", body: body, contentType: type)
            let code =
                ((try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any]).flatMap {
                    ($0["error"] as? [String: Any])?["code"] as? String
                } ?? ""
            return (r.status, code)
        }
        let bulb = TestChain.address(chain.bob)
        let command = BulbCommand(
            bulb: bulb, counter: 1, action: .dim(30), certificateID: Bytes32(w0: 1, w1: 2, w2: 3, w3: 4),
            controller: chain.carol, genesis: chain.node.genesisBlockHash
        ).encoded
        XCTAssertEqual(post(command).0, 403)
        XCTAssertEqual(post(command).1, "certificateUnknown")
        var forged = command
        forged[forged.count - 1] ^= 0x40
        XCTAssertEqual(post(forged).1, "badSignature")
        XCTAssertEqual(post(Array(command.prefix(10))).0, 400)
        XCTAssertEqual(post(Array(command.prefix(10))).1, "undecodable")
        XCTAssertEqual(post([UInt8](repeating: 1, count: 300)).1, "tooLarge")
        XCTAssertEqual(post(command, "application/json").0, 415)
        XCTAssertEqual(
            router.handle(method: "GET", uri: "/v1/commands", body: [], contentType: nil).status, 405,
            "the door takes commands by POST")

        // Nothing refused was queued.
        let listed = router.handle(
            method: "GET", uri: "/v1/commands/\(bulb.bech32)?after=0", body: [], contentType: nil)
        XCTAssertEqual(listed.status, 200)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(listed.body)) as? [String: Any])
        XCTAssertEqual((object["commands"] as? [Any])?.count, 0)
        XCTAssertEqual(door.commands(for: bulb, after: 0), [])
        XCTAssertEqual(
            router.handle(method: "GET", uri: "/v1/commands/amsc1nope", body: [], contentType: nil).status, 400)
        XCTAssertEqual(
            router.handle(method: "GET", uri: "/v1/commands/\(bulb.bech32)?after=-1", body: [], contentType: nil)
                .status, 400)

        // A router with no door says so.
        let doorless = APIRouter(node: chain.node, logger: Logger(label: "t"))
        XCTAssertEqual(
            doorless.handle(method: "POST", uri: "/v1/commands", body: command, contentType: "application/octet-stream")
                .status, 404)
    }
}
