import AmarsCodec
import AmarsCrypto
import Ledger
import LightClient
import XCTest

@testable import Chain

/// Rental escrows through real blocks: a renter opens one naming a lock and its owner, the lock's own signature
/// closes it, and the chain pays fee and damages to the owner and the rest of the deposit back; after expiry the
/// renter alone may take the deposit back. A replica agrees on every state root, the supply stays whole with
/// escrowed funds counted, every rule has its refusal, and a light client proves the escrow's status.
final class EscrowTests: ReplicatedChainTestCase {

    let lock = TestChain.key(500)
    var renter: PrivateKey { t.funded[0] }
    var owner: PrivateKey { t.funded[1] }
    var lockAddress: Address { TestChain.address(lock) }

    func open(deposit: UInt64 = 5_000_000, fee: UInt64 = 700_000, expiry: UInt64) throws -> SignedTransaction {
        try send(
            renter,
            .escrowOpen(
                EscrowOpen(
                    device: lockAddress, owner: TestChain.address(owner), deposit: deposit, rentalFee: fee,
                    expiryHeight: expiry)))
    }

    func testLockClosesWithDamagesAndTheChainPaysBothSides() throws {
        let renterBefore = balance(renter)
        let ownerBefore = balance(owner)
        let opened = try open(expiry: 20)
        try block()
        let escrow = try XCTUnwrap(node.escrow(opened.id).state)
        XCTAssertEqual(escrow.status, .open)
        XCTAssertEqual(escrow.renter, TestChain.address(renter))
        XCTAssertEqual(node.supply.escrowed, 5_700_000)
        let openFee = try fee(opened)
        XCTAssertEqual(balance(renter), renterBefore - 5_700_000 - openFee)

        // The lock signs the return with 1.2 AMSC of damages; the owner submits (and pays the fee).
        let close = EscrowClose(genesis: node.genesisBlockHash, escrowID: opened.id, damages: 1_200_000, device: lock)
        let closed = try send(owner, .escrowClose(close))
        try block()
        let closeFee = try fee(closed)
        let ended = try XCTUnwrap(node.escrow(opened.id).state)
        XCTAssertEqual(ended.status, .closed)
        XCTAssertEqual(ended.damages, 1_200_000)
        XCTAssertEqual(node.supply.escrowed, 0)
        XCTAssertEqual(balance(owner), ownerBefore + 700_000 + 1_200_000 - closeFee)
        XCTAssertEqual(balance(renter), renterBefore - openFee - 700_000 - 1_200_000)

        // Closing again is refused, and changes nothing.
        XCTAssertEqual(plan(.escrowClose(close), sender: TestChain.address(owner)), .notOpen)
    }

    func testTheDeviceKeepsNoMoreDamagesThanTheRenterAccepted() throws {
        let opened = try send(
            renter,
            .escrowOpen(
                EscrowOpen(
                    device: lockAddress, owner: TestChain.address(owner), deposit: 5_000_000, rentalFee: 700_000,
                    maxDamages: 1_000_000, expiryHeight: 20)))
        try block()
        XCTAssertEqual(node.escrow(opened.id).state?.maxDamages, 1_000_000)
        let greedy = EscrowClose(genesis: node.genesisBlockHash, escrowID: opened.id, damages: 1_000_001, device: lock)
        XCTAssertEqual(
            plan(.escrowClose(greedy), sender: TestChain.address(owner)), .damagesOverAgreed(maximum: 1_000_000))
        let fair = EscrowClose(genesis: node.genesisBlockHash, escrowID: opened.id, damages: 1_000_000, device: lock)
        XCTAssertNil(plan(.escrowClose(fair), sender: TestChain.address(owner)))
        // A term over the deposit does not decode.
        var over = EscrowOpen(
            device: lockAddress, owner: TestChain.address(owner), deposit: 5, rentalFee: 1, expiryHeight: 20)
        over.maxDamages = 6
        XCTAssertThrowsError(try EscrowOpen(decoding: over.encoded)) {
            XCTAssertEqual($0 as? CodecError, .invalidValue(.amount))
        }
    }

    func testAReturnAttestedInTheGracePeriodStillRefunds() throws {
        let renterBefore = balance(renter)
        let opened = try open(deposit: 3_000_000, fee: 400_000, expiry: node.head.height + 2)
        for _ in 0..<4 { try block() }  // past the expiry height, inside the grace period
        let late = EscrowClose(genesis: node.genesisBlockHash, escrowID: opened.id, damages: 0, device: lock)
        try send(owner, .escrowClose(late))
        try block()
        XCTAssertEqual(node.escrow(opened.id).state?.status, .closed)
        XCTAssertEqual(balance(renter), renterBefore - (try fee(opened)) - 400_000)
    }

    func testAfterTheReturnDeadlineTheOwnerKeepsTheDeposit() throws {
        let renterBefore = balance(renter)
        let ownerBefore = balance(owner)
        let expiry = node.head.height + 2
        let opened = try open(deposit: 3_000_000, fee: 400_000, expiry: expiry)
        try block()
        let deadline = try XCTUnwrap(node.escrow(opened.id).state).returnDeadline
        XCTAssertEqual(deadline, expiry + EscrowState.returnGraceBlocks)
        let unsigned = EscrowClose(escrowID: opened.id, damages: 0, deviceKey: .zero, deviceSignature: Bytes64.zero)
        // Up to the deadline only the lock's signature closes it, whoever submits; the renter never takes the
        // deposit back without it.
        XCTAssertEqual(
            plan(.escrowClose(unsigned), sender: TestChain.address(owner)), .returnWindowOpen(until: deadline))
        XCTAssertEqual(
            plan(.escrowClose(unsigned), sender: TestChain.address(renter)), .returnWindowOpen(until: deadline))
        while node.head.height < deadline { try block() }  // the next block is past the deadline
        XCTAssertEqual(plan(.escrowClose(unsigned), sender: TestChain.address(renter)), .notOwner)
        var greedy = unsigned
        greedy.damages = 1
        XCTAssertEqual(plan(.escrowClose(greedy), sender: TestChain.address(owner)), .damagesOverDeposit(deposit: 0))
        // The lock's return comes too late to count.
        let late = EscrowClose(genesis: node.genesisBlockHash, escrowID: opened.id, damages: 0, device: lock)
        XCTAssertEqual(plan(.escrowClose(late), sender: TestChain.address(renter)), .notOwner)
        let closed = try send(owner, .escrowClose(unsigned))
        try block()
        let ended = try XCTUnwrap(node.escrow(opened.id).state)
        XCTAssertEqual(ended.status, .kept)
        XCTAssertEqual(ended.damages, 3_000_000)
        XCTAssertEqual(node.supply.escrowed, 0)
        XCTAssertEqual(balance(renter), renterBefore - (try fee(opened)) - 3_000_000 - 400_000)
        XCTAssertEqual(balance(owner), ownerBefore + 3_000_000 + 400_000 - (try fee(closed)))
        XCTAssertEqual(plan(.escrowClose(unsigned), sender: TestChain.address(owner)), .notOpen)
    }

    func testEveryRuleHasItsRefusal() throws {
        let renterAddress = TestChain.address(renter)
        let ownerAddress = TestChain.address(owner)
        let height = node.head.height + 1
        func openPayload(_ device: Address, _ owner: Address, _ deposit: UInt64, _ fee: UInt64, _ expiry: UInt64)
            -> TransactionPayload
        {
            .escrowOpen(
                EscrowOpen(device: device, owner: owner, deposit: deposit, rentalFee: fee, expiryHeight: expiry))
        }
        XCTAssertEqual(plan(openPayload(lockAddress, ownerAddress, 0, 0, 50), sender: renterAddress), .emptyEscrow)
        XCTAssertEqual(plan(openPayload(renterAddress, ownerAddress, 5, 1, 50), sender: renterAddress), .sameParty)
        XCTAssertEqual(plan(openPayload(lockAddress, renterAddress, 5, 1, 50), sender: renterAddress), .sameParty)
        XCTAssertEqual(
            plan(openPayload(lockAddress, ownerAddress, 5, 1, height), sender: renterAddress),
            .expiryPassed(height: height))
        XCTAssertNil(plan(openPayload(lockAddress, ownerAddress, 5, 1, height + 1), sender: renterAddress))

        let unknown = EscrowClose(
            genesis: node.genesisBlockHash, escrowID: Bytes32(w0: 1, w1: 2, w2: 3, w3: 4), damages: 0, device: lock)
        XCTAssertEqual(plan(.escrowClose(unknown), sender: ownerAddress), .unknownEscrow)

        let opened = try open(deposit: 1_000, fee: 10, expiry: 40)
        try block()
        let id = opened.id
        let impostor = TestChain.key(501)
        XCTAssertEqual(
            plan(
                .escrowClose(EscrowClose(genesis: node.genesisBlockHash, escrowID: id, damages: 0, device: impostor)),
                sender: ownerAddress),
            .wrongDevice)
        // The lock signed damages 0; a close claiming 500 with that signature.
        var altered = EscrowClose(genesis: node.genesisBlockHash, escrowID: id, damages: 0, device: lock)
        altered.damages = 500
        XCTAssertEqual(plan(.escrowClose(altered), sender: ownerAddress), .badDeviceSignature)
        // Signed for another chain.
        let otherChain = EscrowClose(
            genesis: Bytes32(w0: 1, w1: 2, w2: 3, w3: 4), escrowID: id, damages: 0, device: lock)
        XCTAssertEqual(plan(.escrowClose(otherChain), sender: ownerAddress), .badDeviceSignature)
        XCTAssertEqual(
            plan(
                .escrowClose(EscrowClose(genesis: node.genesisBlockHash, escrowID: id, damages: 1_001, device: lock)),
                sender: ownerAddress), .damagesOverDeposit(deposit: 1_000))
        XCTAssertNil(
            plan(
                .escrowClose(EscrowClose(genesis: node.genesisBlockHash, escrowID: id, damages: 1_000, device: lock)),
                sender: ownerAddress))
        XCTAssertEqual(node.escrow(id).state?.status, .open, "refusals change nothing")
    }

    /// What a lock does before it opens: the escrow proven open and naming it, against a verified state root;
    /// a gateway's lie about its status or about another escrow's absence is refused.
    func testLightClientProvesTheEscrowsStatus() throws {
        let opened = try open(expiry: 30)
        try block()
        let view = node.escrow(opened.id)
        XCTAssertEqual(view.stateRoot, node.head.stateRoot)
        let proven = try ProofVerifier.verifyEscrow(
            view.state, id: opened.id, proof: view.proof, stateRoot: view.stateRoot)
        XCTAssertEqual(proven?.device, lockAddress)
        XCTAssertEqual(proven?.status, .open)
        var lie = try XCTUnwrap(view.state)
        lie.status = .closed
        XCTAssertThrowsError(
            try ProofVerifier.verifyEscrow(lie, id: opened.id, proof: view.proof, stateRoot: view.stateRoot))
        XCTAssertThrowsError(
            try ProofVerifier.verifyEscrow(nil, id: opened.id, proof: view.proof, stateRoot: view.stateRoot),
            "an open escrow cannot be passed off as absent")
        let none = node.escrow(Bytes32(w0: 9, w1: 9, w2: 9, w3: 9))
        XCTAssertNil(none.state)
        XCTAssertNil(
            try ProofVerifier.verifyEscrow(
                nil, id: Bytes32(w0: 9, w1: 9, w2: 9, w3: 9), proof: none.proof, stateRoot: none.stateRoot))
        // After the close the same proof route shows it closed: the lock must lock again.
        _ = try send(
            owner,
            .escrowClose(EscrowClose(genesis: node.genesisBlockHash, escrowID: opened.id, damages: 0, device: lock)))
        try block()
        let after = node.escrow(opened.id)
        XCTAssertEqual(
            try ProofVerifier.verifyEscrow(after.state, id: opened.id, proof: after.proof, stateRoot: after.stateRoot)?
                .status, .closed)
        XCTAssertThrowsError(
            try ProofVerifier.verifyEscrow(view.state, id: opened.id, proof: after.proof, stateRoot: after.stateRoot),
            "the old open state does not verify against the new root")
    }

    func testEscrowStateCodecRefusesBadValues() throws {
        let good = EscrowState(
            renter: lockAddress, device: lockAddress, owner: lockAddress, deposit: 10, rentalFee: 1, expiryHeight: 5,
            status: .closed, damages: 10)
        XCTAssertEqual(try EscrowState(decoding: good.encoded), good)
        var overDamaged = good
        overDamaged.damages = 11
        XCTAssertThrowsError(try EscrowState(decoding: overDamaged.encoded))
        var badStatus = good.encoded
        badStatus[3 * 20 + 4] = 7  // deposit, fee, most damages and expiry are one byte each here
        XCTAssertThrowsError(try EscrowState(decoding: badStatus))
        let encoded = good.encoded
        for cut in 0..<encoded.count { XCTAssertThrowsError(try EscrowState(decoding: Array(encoded[0..<cut]))) }
    }

    /// The executor's verdict on `payload` from `sender` against the head state, without touching it.
    func plan(_ payload: TransactionPayload, sender: Address) -> EscrowError? {
        let overlay = StateOverlay(base: WorldStateProbe.world(of: node))
        let height = node.head.height + 1
        do {
            switch payload {
            case .escrowOpen(let o):
                _ = try EscrowRules.planOpen(o, id: .zero, renter: sender, height: height)
            case .escrowClose(let c):
                _ = try EscrowRules.planClose(
                    c, sender: sender, genesis: node.genesisBlockHash, height: height, state: overlay)
            default:
                XCTFail("not an escrow payload")
            }
            return nil
        } catch { return error }
    }
}
