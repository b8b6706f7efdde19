import AmarsCodec
import AmarsTestSupport
import XCTest

@testable import AmarsCrypto

/// SHA-256, SHA-512, HMAC and tagged hashes against published vectors only (sources in Vectors/SOURCES.md), plus
/// streaming checks: any split of the input into updates must give the one-shot digest.
final class HashVectorTests: XCTestCase {
    // MARK: - FIPS 180-2 / 180-4 examples

    func testSHA256FIPSExamples() {
        XCTAssertEqual(
            hexString(SHA256.hash(ascii("abc")).bytes),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(
            hexString(SHA256.hash(ascii(HashVectors.message448)).bytes),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(
            hexString(SHA256.hash(ascii(HashVectors.message896)).bytes),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        let millionA = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        XCTAssertEqual(hexString(SHA256.hash([UInt8](repeating: 0x61, count: 1_000_000)).bytes), millionA)
        // The same million bytes fed in pieces that never align with the 64-byte block.
        var hasher = SHA256()
        let piece = [UInt8](repeating: 0x61, count: 1000)
        for _ in 0..<1000 { hasher.update(piece) }
        XCTAssertEqual(hexString(hasher.finalize().bytes), millionA)
    }

    /// The looped compression a device runs and the accelerated one a host runs must equal the unrolled one,
    /// block by block, from any chaining value (the vectors above only reach the host's form).
    func testCompactCompressionEqualsUnrolledOnRandomBlocks() {
        var rng = SplitMix64(seed: 0x5A_256)
        for _ in 0..<2_000 {
            let block = (0..<64).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            var unrolled = SHA256State(
                h0: UInt32(truncatingIfNeeded: rng.next()), h1: UInt32(truncatingIfNeeded: rng.next()),
                h2: UInt32(truncatingIfNeeded: rng.next()), h3: UInt32(truncatingIfNeeded: rng.next()),
                h4: UInt32(truncatingIfNeeded: rng.next()), h5: UInt32(truncatingIfNeeded: rng.next()),
                h6: UInt32(truncatingIfNeeded: rng.next()), h7: UInt32(truncatingIfNeeded: rng.next()))
            var compact = unrolled
            var dispatched = unrolled
            block.withUnsafeBytes { unrolled.compressUnrolled($0.baseAddress!) }
            block.withUnsafeBytes { compact.compressCompact($0.baseAddress!) }
            // What `SHA256` itself calls on this machine (OpenSSL's compression on a host build).
            block.withUnsafeBytes { dispatched.compress($0.baseAddress!) }
            XCTAssertEqual(compact.digest, unrolled.digest)
            XCTAssertEqual(dispatched.digest, unrolled.digest)
        }
        // And the FIPS "abc" block through the looped form alone, from the initial value.
        var state = SHA256State.initial
        var block = [UInt8](repeating: 0, count: 64)
        block[0] = 0x61
        block[1] = 0x62
        block[2] = 0x63
        block[3] = 0x80
        block[63] = 24
        block.withUnsafeBytes { state.compressCompact($0.baseAddress!) }
        XCTAssertEqual(
            Hex.encode(state.digest.bytes), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    /// SHA-512's looped compression (what a device runs) equals the unrolled one from any chaining value.
    func testSHA512CompactCompressionEqualsUnrolledOnRandomBlocks() {
        var rng = SplitMix64(seed: 0x5A_512)
        for _ in 0..<2_000 {
            let block = (0..<128).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            var unrolled = SHA512State(
                h0: rng.next(), h1: rng.next(), h2: rng.next(), h3: rng.next(), h4: rng.next(), h5: rng.next(),
                h6: rng.next(), h7: rng.next())
            var compact = unrolled
            block.withUnsafeBytes { unrolled.compressUnrolled($0.baseAddress!) }
            block.withUnsafeBytes { compact.compressCompact($0.baseAddress!) }
            XCTAssertEqual(
                [compact.h0, compact.h1, compact.h2, compact.h3, compact.h4, compact.h5, compact.h6, compact.h7],
                [
                    unrolled.h0, unrolled.h1, unrolled.h2, unrolled.h3, unrolled.h4, unrolled.h5, unrolled.h6,
                    unrolled.h7,
                ])
        }
    }

    func testSHA512FIPSExamples() {
        XCTAssertEqual(
            hexString(SHA512.hash(ascii("abc"))),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                + "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")
        XCTAssertEqual(
            hexString(SHA512.hash(ascii(HashVectors.message448))),
            "204a8fc6dda82f0a0ced7beb8e08a41657c16ef468b228a8279be331a703c335"
                + "96fd15c13b1b07f9aa1d3bea57789ca031ad85c7a71dd70354ec631238ca3445")
        XCTAssertEqual(
            hexString(SHA512.hash(ascii(HashVectors.message896))),
            "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
                + "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909")
        let millionA =
            "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973eb"
            + "de0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b"
        XCTAssertEqual(hexString(SHA512.hash([UInt8](repeating: 0x61, count: 1_000_000))), millionA)
        var hasher = SHA512()
        let piece = [UInt8](repeating: 0x61, count: 1000)
        for _ in 0..<1000 { hasher.update(piece) }
        XCTAssertEqual(hexString(hasher.finalize()), millionA)
    }

    func testSHA256EmptyMessage() {
        // CAVP ShortMsg "Len = 0": the listed Msg byte 00 is a placeholder, the message is empty.
        XCTAssertEqual(
            hexString(SHA256.hash([]).bytes), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(
            hexString(SHA512.hash([])),
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
                + "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e")
    }

    // MARK: - NIST CAVP SHAVS byte-oriented vectors

    func testSHA256CAVPShortAndLongMessages() {
        for vector in HashVectors.sha256Short + HashVectors.sha256Long {
            let message = vector.messageBytes
            XCTAssertEqual(message.count * 8, vector.bits)
            XCTAssertEqual(SHA256.hash(message).bytes, vector.digestBytes, "Len = \(vector.bits)")
            let viaPointer = message.withUnsafeBytes { SHA256.hash($0) }
            XCTAssertEqual(viaPointer.bytes, vector.digestBytes, "Len = \(vector.bits), raw buffer")
        }
    }

    func testSHA512CAVPShortAndLongMessages() {
        for vector in HashVectors.sha512Short + HashVectors.sha512Long {
            let message = vector.messageBytes
            XCTAssertEqual(message.count * 8, vector.bits)
            XCTAssertEqual(SHA512.hash(message), vector.digestBytes, "Len = \(vector.bits)")
        }
    }

    // MARK: - RFC 5869

    /// HKDF-Expand with SHA-256 (RFC 5869 appendix A): test case 1 (PRK and info as listed) and test case 3 (empty
    /// info); the first 32 bytes of each OKM, the one block a device derives.
    func testHKDFExpandRFC5869() {
        func bytes(_ hex: String) -> [UInt8] {
            var out: [UInt8] = []
            var i = hex.startIndex
            while i < hex.endIndex {
                let j = hex.index(i, offsetBy: 2)
                out.append(UInt8(hex[i..<j], radix: 16)!)
                i = j
            }
            return out
        }
        let cases: [(prk: String, info: String, okm: String)] = [
            (
                "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5", "f0f1f2f3f4f5f6f7f8f9",
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
            ),
            (
                "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04", "",
                "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
            ),
        ]
        for c in cases {
            let okm = HKDF.expandSHA256(prk: Bytes32(bytes(c.prk))!, info: bytes(c.info))
            XCTAssertEqual(okm.bytes, bytes(c.okm), c.prk)
        }
    }

    // MARK: - RFC 4231

    func testHMACSHA256RFC4231() {
        for test in HashVectors.rfc4231 {
            let tag = HMAC.sha256(key: test.keyBytes, message: test.dataBytes).bytes
            let expected = test.sha256Bytes
            XCTAssertEqual(Array(tag.prefix(expected.count)), expected, "test case \(test.number)")
        }
    }

    func testHMACSHA512RFC4231() {
        for test in HashVectors.rfc4231 {
            let tag = HMAC.sha512(key: test.keyBytes, message: test.dataBytes)
            XCTAssertEqual(tag.count, 64)
            let expected = test.sha512Bytes
            XCTAssertEqual(Array(tag.prefix(expected.count)), expected, "test case \(test.number)")
        }
    }

    func testHMACKeyOfExactlyOneBlockIsNotHashed() {
        // RFC 2104: a key of exactly the block size is used as is; only longer keys are hashed. Checked against
        // the definition rather than a published vector.
        let key = (0..<64).map { UInt8($0) }
        let message = ascii("Sample message for keylen=blocklen")
        let inner = SHA256.hash(key.map { $0 ^ 0x36 } + message)
        let expected = SHA256.hash(key.map { $0 ^ 0x5c } + inner.bytes)
        XCTAssertEqual(HMAC.sha256(key: key, message: message), expected)
    }

    // MARK: - Tagged hashes

    func testTaggedHashMatchesDefinition() {
        var random = SplitMix64(seed: 0x5eed_0001)
        for tag in ["BIP0340/challenge", "TapTweak", "amsc/tx", ""] {
            let tagged = TaggedHash(tag: ascii(tag))
            let tagDigest = SHA256.hash(ascii(tag)).bytes
            for length in [0, 1, 31, 32, 33, 55, 56, 63, 64, 65, 100, 128, 200] {
                let message = random.bytes(length)
                let naive = SHA256.hash(tagDigest + tagDigest + message)
                XCTAssertEqual(tagged.hash(message), naive, "tag \(tag), \(length) bytes")
                XCTAssertEqual(message.withUnsafeBytes { tagged.hash($0) }, naive)
                var hasher = tagged.hasher()
                hasher.update(message)
                XCTAssertEqual(hasher.finalize(), naive)
            }
            let a = Bytes32(random.bytes(32))!
            let b = Bytes32(random.bytes(32))!
            XCTAssertEqual(tagged.hash(a, b), SHA256.hash(tagDigest + tagDigest + a.bytes + b.bytes))
            XCTAssertEqual(tagged.hash(a), SHA256.hash(tagDigest + tagDigest + a.bytes))
        }
        let fromStatic = TaggedHash(tag: "BIP0340/challenge")
        let fromBytes = TaggedHash(tag: ascii("BIP0340/challenge"))
        XCTAssertEqual(fromStatic.hash([1, 2, 3]), fromBytes.hash([1, 2, 3]))
    }

    func testTaggedHashMidstatesMatchLibsecp256k1() {
        // libsecp256k1 hard-codes the state after compressing SHA256(tag) || SHA256(tag) for the BIP340 tags.
        let expected: [(StaticString, [UInt32])] = [
            (
                "BIP0340/challenge",
                [
                    0x9cec_ba11, 0x2392_5381, 0x1167_9112, 0xd162_7e0f, 0x97c8_7550, 0x003c_c765, 0x90f6_1164,
                    0x33e9_b66a,
                ]
            ),
            (
                "BIP0340/nonce",
                [
                    0x4661_5b35, 0xf4bf_bff7, 0x9f8d_c671, 0x8362_7ab3, 0x6021_7180, 0x5735_8661, 0x21a2_9e54,
                    0x68b0_7b4c,
                ]
            ),
            (
                "BIP0340/aux",
                [
                    0x24dd_3219, 0x4eba_7e70, 0xca0f_abb9, 0x0fa3_166d, 0x3afb_e4b1, 0x4c44_df97, 0x4aac_2739,
                    0x249e_850a,
                ]
            ),
        ]
        for (tag, words) in expected {
            let state = TaggedHash(tag: tag).midstate
            XCTAssertEqual([state.h0, state.h1, state.h2, state.h3, state.h4, state.h5, state.h6, state.h7], words)
        }
    }

    func testTaggedHashBIP341Vectors() {
        // bip-0341/wallet-test-vectors.json, scriptPubKey cases: TapTweak over the internal key alone (no script
        // tree) and over key || merkle root, and TapLeaf over leaf version || compact size || script.
        let tapTweak = TaggedHash(tag: "TapTweak")
        let keyOnly = Bytes32(fromHex("d6889cb081036e0faefa3a35157ad71086b123b2b144b649798b494c300a961d"))!
        XCTAssertEqual(
            tapTweak.hash(keyOnly),
            Bytes32(fromHex("b86e7be8f39bab32a6f2c0443abbc210f0edac0e2c53d501b36b64437d9c6c70")))
        XCTAssertEqual(
            tapTweak.hash(keyOnly.bytes),
            Bytes32(fromHex("b86e7be8f39bab32a6f2c0443abbc210f0edac0e2c53d501b36b64437d9c6c70")))
        for (key, root, tweak) in HashVectors.tapTweaks {
            let key = Bytes32(fromHex(key))!
            let root = Bytes32(fromHex(root))!
            let expected = Bytes32(fromHex(tweak))!
            XCTAssertEqual(tapTweak.hash(key, root), expected)
            XCTAssertEqual(tapTweak.hash(key.bytes + root.bytes), expected)
        }
        let tapLeaf = TaggedHash(tag: "TapLeaf")
        for (script, leafHash) in HashVectors.tapLeaves {
            let script = fromHex(script)
            let message = [0xc0, UInt8(script.count)] + script
            XCTAssertEqual(tapLeaf.hash(message), Bytes32(fromHex(leafHash)))
        }
    }

    // MARK: - Streaming

    func testSHA256RandomSplitsMatchOneShot() {
        var random = SplitMix64(seed: 0x0ddb_a11)
        for length in HashVectors.boundaryLengths {
            let message = random.bytes(length)
            let expected = SHA256.hash(message)
            for _ in 0..<20 {
                var hasher = SHA256()
                var offset = 0
                while offset < length {
                    let step = min(length - offset, Int(random.next() % 80))
                    hasher.update(Array(message[offset..<offset + step]))
                    offset += step
                }
                XCTAssertEqual(hasher.finalize(), expected, "\(length) bytes")
            }
            var byteByByte = SHA256()
            for byte in message { byteByByte.update(byte) }
            XCTAssertEqual(byteByByte.finalize(), expected, "\(length) bytes, one byte at a time")
        }
    }

    func testSHA512RandomSplitsMatchOneShot() {
        var random = SplitMix64(seed: 0x5ca1_ab1e)
        for length in HashVectors.boundaryLengths + [127, 129, 239, 240, 255, 256, 257] {
            let message = random.bytes(length)
            let expected = SHA512.hash(message)
            for _ in 0..<20 {
                var hasher = SHA512()
                var offset = 0
                while offset < length {
                    let step = min(length - offset, Int(random.next() % 150))
                    message[offset..<offset + step].withUnsafeBytes { hasher.update($0) }
                    offset += step
                }
                XCTAssertEqual(hasher.finalize(), expected, "\(length) bytes")
            }
        }
    }

    func testSHA256UpdateWithBytes32FeedsBigEndianBytes() {
        var random = SplitMix64(seed: 42)
        for prefixLength in [0, 1, 31, 32, 33, 63] {
            let prefix = random.bytes(prefixLength)
            let value = Bytes32(random.bytes(32))!
            var hasher = SHA256()
            hasher.update(prefix)
            hasher.update(value)
            XCTAssertEqual(hasher.finalize(), SHA256.hash(prefix + value.bytes))
        }
    }

    func testFinalizeLeavesTheHasherUsable() {
        var hasher = SHA256()
        hasher.update(ascii("ab"))
        XCTAssertEqual(hasher.finalize(), SHA256.hash(ascii("ab")))
        hasher.update(ascii("c"))
        XCTAssertEqual(hasher.finalize(), SHA256.hash(ascii("abc")))
        var wide = SHA512()
        wide.update(ascii("ab"))
        XCTAssertEqual(wide.finalize(), SHA512.hash(ascii("ab")))
        wide.update(ascii("c"))
        XCTAssertEqual(wide.finalize(), SHA512.hash(ascii("abc")))
    }
}

// MARK: - Vectors

private struct KnownAnswer {
    let bits: Int
    let message: [String]
    let digest: [String]

    var messageBytes: [UInt8] { fromHex(message.joined()) }
    var digestBytes: [UInt8] { fromHex(digest.joined()) }
}

private struct HMACCase {
    let number: Int
    let key: [String]
    let data: [String]
    let sha256: [String]
    let sha512: [String]

    var keyBytes: [UInt8] { fromHex(key.joined()) }
    var dataBytes: [UInt8] { fromHex(data.joined()) }
    var sha256Bytes: [UInt8] { fromHex(sha256.joined()) }
    var sha512Bytes: [UInt8] { fromHex(sha512.joined()) }
}

private enum HashVectors {
    /// FIPS 180-2 appendix examples: the 448-bit (two-block for SHA-256) and 896-bit (two-block for SHA-512)
    /// messages.
    static let message448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
    static let message896 =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrst"
        + "nopqrstu"

    /// Lengths on either side of where the length field stops fitting in the last block and of block ends.
    static let boundaryLengths = [0, 1, 55, 56, 57, 63, 64, 65, 111, 112, 113, 119, 120, 128, 129, 200, 1000]

    /// (internal key, merkle root, tweak) from bip-0341/wallet-test-vectors.json.
    static let tapTweaks: [(String, String, String)] = [
        (
            "187791b6f712a8ea41c8ecdd0ee77fab3e85263b37e1ec18a3651926b3a6cf27",
            "5b75adecf53548f3ec6ad7d78383bf84cc57b55a3127c72b9a2481752dd88b21",
            "cbd8679ba636c1110ea247542cfbd964131a6be84f873f7f3b62a777528ed001"
        ),
        (
            "93478e9488f956df2396be2ce6c5cced75f900dfa18e7dabd2428aae78451820",
            "c525714a7f49c28aedbbba78c005931a81c234b2f6c99a73e4d06082adc8bf2b",
            "6af9e28dbf9d6aaf027696e2598a5b3d056f5fd2355a7fd5a37a0e5008132d30"
        ),
        (
            "ee4fe085983462a184015d1f782d6a5f8b9c2b60130aff050ce221ecf3786592",
            "6c2dc106ab816b73f9d07e3cd1ef2c8c1256f519748e0813e4edd2405d277bef",
            "9e0517edc8259bb3359255400b23ca9507f2a91cd1e4250ba068b4eafceba4a9"
        ),
    ]

    /// (script, leaf hash) with leaf version 0xc0, from the same file.
    static let tapLeaves: [(String, String)] = [
        (
            "20d85a959b0290bf19bb89ed43c916be835475d013da4b362117393e25a48229b8ac",
            "5b75adecf53548f3ec6ad7d78383bf84cc57b55a3127c72b9a2481752dd88b21"
        ),
        (
            "20b617298552a72ade070667e86ca63b8f5789a9fe8731ef91202a91c9f3459007ac",
            "c525714a7f49c28aedbbba78c005931a81c234b2f6c99a73e4d06082adc8bf2b"
        ),
    ]

    /// SHA256ShortMsg.rsp (byte-oriented), selected lengths around the 55/56/64-byte padding boundaries.
    static let sha256Short: [KnownAnswer] = [
        KnownAnswer(
            bits: 8,
            message: ["d3"],
            digest: ["28969cdfa74a12c82f3bad960b0b000aca2ac329deea5c2328ebc6f2ba9802c1"]),
        KnownAnswer(
            bits: 16,
            message: ["11af"],
            digest: ["5ca7133fa735326081558ac312c620eeca9970d1e70a4b95533d956f072d1f98"]),
        KnownAnswer(
            bits: 24,
            message: ["b4190e"],
            digest: ["dff2e73091f6c05e528896c4c831b9448653dc2ff043528f6769437bc7b975c2"]),
        KnownAnswer(
            bits: 32,
            message: ["74ba2521"],
            digest: ["b16aa56be3880d18cd41e68384cf1ec8c17680c45a02b1575dc1518923ae8b0e"]),
        KnownAnswer(
            bits: 40,
            message: ["c299209682"],
            digest: ["f0887fe961c9cd3beab957e8222494abb969b1ce4c6557976df8b0f6d20e9166"]),
        KnownAnswer(
            bits: 48,
            message: ["e1dc724d5621"],
            digest: ["eca0a060b489636225b4fa64d267dabbe44273067ac679f20820bddc6b6a90ac"]),
        KnownAnswer(
            bits: 56,
            message: ["06e076f5a442d5"],
            digest: ["3fd877e27450e6bbd5d74bb82f9870c64c66e109418baa8e6bbcff355e287926"]),
        KnownAnswer(
            bits: 64,
            message: ["5738c929c4f4ccb6"],
            digest: ["963bb88f27f512777aab6c8b1a02c70ec0ad651d428f870036e1917120fb48bf"]),
        KnownAnswer(
            bits: 72,
            message: ["3334c58075d3f4139e"],
            digest: ["078da3d77ed43bd3037a433fd0341855023793f9afd08b4b08ea1e5597ceef20"]),
        KnownAnswer(
            bits: 128,
            message: ["0a27847cdc98bd6f62220b046edd762b"],
            digest: ["80c25ec1600587e7f28b18b1b18e3cdc89928e39cab3bc25e4d4a4c139bcedc4"]),
        KnownAnswer(
            bits: 256,
            message: ["09fc1accc230a205e4a208e64a8f204291f581a12756392da4b8c0cf5ef02b95"],
            digest: ["4f44c1c7fbebb6f9601829f3897bfd650c56fa07844be76489076356ac1886a4"]),
        KnownAnswer(
            bits: 440,
            message: [
                "3ebfb06db8c38d5ba037f1363e118550aad94606e26835a01af05078533cc25f2f39573c04b632f62f68c294ab31f2a3",
                "e2a1a0d8c2be51",
            ],
            digest: ["6595a2ef537a69ba8583dfbf7f5bec0ab1f93ce4c8ee1916eff44a93af5749c4"]),
        KnownAnswer(
            bits: 448,
            message: [
                "2d52447d1244d2ebc28650e7b05654bad35b3a68eedc7f8515306b496d75f3e73385dd1b002625024b81a02f2fd6dffb",
                "6e6d561cb7d0bd7a",
            ],
            digest: ["cfb88d6faf2de3a69d36195acec2e255e2af2b7d933997f348e09f6ce5758360"]),
        KnownAnswer(
            bits: 456,
            message: [
                "4cace422e4a015a75492b3b3bbfbdf3758eaff4fe504b46a26c90dacc119fa9050f603d2b58b398cad6d6d9fa922a154",
                "d9e0bc4389968274b0",
            ],
            digest: ["4d54b2d284a6794581224e08f675541c8feab6eefa3ac1cfe5da4e03e62f72e4"]),
        KnownAnswer(
            bits: 504,
            message: [
                "e2f76e97606a872e317439f1a03fcd92e632e5bd4e7cbc4e97f1afc19a16fde92d77cbe546416b51640cddb92af99653",
                "4dfd81edb17c4424cf1ac4d75aceeb",
            ],
            digest: ["18041bd4665083001fba8c5411d2d748e8abbfdcdfd9218cb02b68a78e7d4c23"]),
        KnownAnswer(
            bits: 512,
            message: [
                "5a86b737eaea8ee976a0a24da63e7ed7eefad18a101c1211e2b3650c5187c2a8a650547208251f6d4237e661c7bf4c77",
                "f335390394c37fa1a9f9be836ac28509",
            ],
            digest: ["42e61e174fbb3897d6dd6cef3dd2802fe67b331953b06114a65c772859dfc1aa"]),
    ]

    /// SHA256LongMsg.rsp: the first two records (163 and 262 bytes).
    static let sha256Long: [KnownAnswer] = [
        KnownAnswer(
            bits: 1304,
            message: [
                "451101250ec6f26652249d59dc974b7361d571a8101cdfd36aba3b5854d3ae086b5fdd4597721b66e3c0dc5d8c606d96",
                "57d0e323283a5217d1f53f2f284f57b85c8a61ac8924711f895c5ed90ef17745ed2d728abd22a5f7a13479a462d71b56",
                "c19a74a40b655c58edfe0a188ad2cf46cbf30524f65d423c837dd1ff2bf462ac4198007345bb44dbb7b1c861298cdf61",
                "982a833afc728fae1eda2f87aa2c9480858bec",
            ],
            digest: ["3c593aa539fdcdae516cdf2f15000f6634185c88f505b39775fb9ab137a10aa2"]),
        KnownAnswer(
            bits: 2096,
            message: [
                "6b918fb1a5ad1f9c5e5dbdf10a93a9c8f6bca89f37e79c9fe12a57227941b173ac79d8d440cde8c64c4ebc84a4c803d1",
                "98a296f3de060900cc427f58ca6ec373084f95dd6c7c427ecfbf781f68be572a88dbcbb188581ab200bfb99a3a816407",
                "e7dd6dd21003554d4f7a99c93ebfce5c302ff0e11f26f83fe669acefb0c1bbb8b1e909bd14aa48ba3445c88b0e1190ee",
                "f765ad898ab8ca2fe507015f1578f10dce3c11a55fb9434ee6e9ad6cc0fdc4684447a9b3b156b908646360f24fec2d8f",
                "a69e2c93db78708fcd2eef743dcb9353819b8d667c48ed54cd436fb1476598c4a1d7028e6f2ff50751db36ab6bc32435",
                "152a00abd3d58d9a8770d9a3e52d5a3628ae3c9e0325",
            ],
            digest: ["46500b6ae1ab40bde097ef168b0f3199049b55545a1588792d39d594f493dca7"]),
    ]

    /// SHA512ShortMsg.rsp, including 127 and 128 bytes around the 112/128-byte padding boundaries.
    static let sha512Short: [KnownAnswer] = [
        KnownAnswer(
            bits: 8,
            message: ["21"],
            digest: [
                "3831a6a6155e509dee59a7f451eb35324d8f8f2df6e3708894740f98fdee23889f4de5adb0c5010dfb555cda77c8ab5d",
                "c902094c52de3278f35a75ebc25f093a",
            ]),
        KnownAnswer(
            bits: 16,
            message: ["9083"],
            digest: [
                "55586ebba48768aeb323655ab6f4298fc9f670964fc2e5f2731e34dfa4b0c09e6e1e12e3d7286b3145c61c2047fb1a2a",
                "1297f36da64160b31fa4c8c2cddd2fb4",
            ]),
        KnownAnswer(
            bits: 24,
            message: ["0a55db"],
            digest: [
                "7952585e5330cb247d72bae696fc8a6b0f7d0804577e347d99bc1b11e52f384985a428449382306a89261ae143c2f3fb",
                "613804ab20b42dc097e5bf4a96ef919b",
            ]),
        KnownAnswer(
            bits: 32,
            message: ["23be86d5"],
            digest: [
                "76d42c8eadea35a69990c63a762f330614a4699977f058adb988f406fb0be8f2ea3dce3a2bbd1d827b70b9b299ae6f9e",
                "5058ee97b50bd4922d6d37ddc761f8eb",
            ]),
        KnownAnswer(
            bits: 64,
            message: ["6f8d58b7cab1888c"],
            digest: [
                "a3941def2803c8dfc08f20c06ba7e9a332ae0c67e47ae57365c243ef40059b11be22c91da6a80c2cff0742a8f4bcd941",
                "bdee0b861ec872b215433ce8dcf3c031",
            ]),
        KnownAnswer(
            bits: 128,
            message: ["cd67bd4054aaa3baa0db178ce232fd5a"],
            digest: [
                "0d8521f8f2f3900332d1a1a55c60ba81d04d28dfe8c504b6328ae787925fe0188f2ba91c3a9f0c1653c4bf0ada356455",
                "ea36fd31f8e73e3951cad4ebba8c6e04",
            ]),
        KnownAnswer(
            bits: 256,
            message: ["8ccb08d2a1a282aa8cc99902ecaf0f67a9f21cffe28005cb27fcf129e963f99d"],
            digest: [
                "4551def2f9127386eea8d4dae1ea8d8e49b2add0509f27ccbce7d9e950ac7db01d5bca579c271b9f2d806730d88f5825",
                "2fd0c2587851c3ac8a0e72b4e1dc0da6",
            ]),
        KnownAnswer(
            bits: 1016,
            message: [
                "c13e6ca3abb893aa5f82c4a8ef754460628af6b75af02168f45b72f8f09e45ed127c203bc7bb80ff0c7bd96f8cc6d811",
                "0868eb2cfc01037d8058992a6cf2effcbfe498c842e53a2e68a793867968ba18efc4a78b21cdf6a11e5de821dcabab14",
                "921ddb33625d48a13baffad6fe8272dbdf4433bd0f7b813c981269c388f001",
            ],
            digest: [
                "6e56f77f6883d0bd4face8b8d557f144661989f66d51b1fe4b8fc7124d66d9d20218616fea1bcf86c08d63bf8f2f2184",
                "5a3e519083b937e70aa7c358310b5a7c",
            ]),
        KnownAnswer(
            bits: 1024,
            message: [
                "fd2203e467574e834ab07c9097ae164532f24be1eb5d88f1af7748ceff0d2c67a21f4e4097f9d3bb4e9fbf97186e0db6",
                "db0100230a52b453d421f8ab9c9a6043aa3295ea20d2f06a2f37470d8a99075f1b8a8336f6228cf08b5942fc1fb4299c",
                "7d2480e8e82bce175540bdfad7752bc95b577f229515394f3ae5cec870a4b2f8",
            ],
            digest: [
                "a21b1077d52b27ac545af63b32746c6e3c51cb0cb9f281eb9f3580a6d4996d5c9917d2a6e484627a9d5a06fa1b25327a",
                "9d710e027387fc3e07d7c4d14c6086cc",
            ]),
    ]

    /// SHA512LongMsg.rsp: the first record (227 bytes).
    static let sha512Long: [KnownAnswer] = [
        KnownAnswer(
            bits: 1816,
            message: [
                "4f05600950664d5190a2ebc29c9edb89c20079a4d3e6bc3b27d75e34e2fa3d02768502bd69790078598d5fcf3d6779bf",
                "ed1284bbe5ad72fb456015181d9587d6e864c940564eaafb4f2fead4346ea09b6877d9340f6b82eb1515880872213da3",
                "ad88feba9f4f13817a71d6f90a1a17c43a15c038d988b5b29edffe2d6a062813cedbe852cde302b3e33b696846d2a8e3",
                "6bd680efcc6cd3f9e9a4c1ae8cac10cc5244d131677140399176ed46700019a004a163806f7fa467fc4e17b4617bbd76",
                "41aaff7ff56396ba8c08a8be100b33a20b5daf134a2aefa5e1c3496770dcf6baa4f7bb",
            ],
            digest: [
                "a9db490c708cc72548d78635aa7da79bb253f945d710e5cb677a474efc7c65a2aab45bc7ca1113c8ce0f3c32e1399de9",
                "c459535e8816521ab714b2a6cd200525",
            ])
    ]

    /// RFC 4231 section 4, test cases 1-7; case 5 lists only the first 128 bits of each tag.
    static let rfc4231: [HMACCase] = [
        HMACCase(
            number: 1,
            key: ["0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"],
            data: ["4869205468657265"],
            sha256: ["b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"],
            sha512: [
                "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4",
                "be9d914eeb61f1702e696c203a126854",
            ]),
        HMACCase(
            number: 2,
            key: ["4a656665"],
            data: ["7768617420646f2079612077616e7420666f72206e6f7468696e673f"],
            sha256: ["5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"],
            sha512: [
                "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fd",
                "caeab1a34d4a6b4b636e070a38bce737",
            ]),
        HMACCase(
            number: 3,
            key: ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],
            data: [
                "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
                "dddd",
            ],
            sha256: ["773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"],
            sha512: [
                "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807",
                "b946a337bee8942674278859e13292fb",
            ]),
        HMACCase(
            number: 4,
            key: ["0102030405060708090a0b0c0d0e0f10111213141516171819"],
            data: [
                "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
                "cdcd",
            ],
            sha256: ["82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"],
            sha512: [
                "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063",
                "a5f19741120c4f2de2adebeb10a298dd",
            ]),
        HMACCase(
            number: 5,
            key: ["0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c"],
            data: ["546573742057697468205472756e636174696f6e"],
            sha256: ["a3b6167473100ee06e0c796c2955552b"],
            sha512: ["415fad6271580a531d4179bc891d87a6"]),
        HMACCase(
            number: 6,
            key: [
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            ],
            data: [
                "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048617368204b6579",
                "204669727374",
            ],
            sha256: ["60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"],
            sha512: [
                "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e52",
                "95e64f73f63f0aec8b915a985d786598",
            ]),
        HMACCase(
            number: 7,
            key: [
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            ],
            data: [
                "5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b2d73697a65206b65",
                "7920616e642061206c6172676572207468616e20626c6f636b2d73697a6520646174612e20546865206b6579206e6565",
                "647320746f20626520686173686564206265666f7265206265696e6720757365642062792074686520484d414320616c",
                "676f726974686d2e",
            ],
            sha256: ["9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"],
            sha512: [
                "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15",
                "134676fb6de0446065c97440fa8c6a58",
            ]),
    ]
}

// MARK: - Helpers

private func ascii(_ text: String) -> [UInt8] {
    Array(text.utf8)
}

private func fromHex(_ text: String) -> [UInt8] {
    func nibble(_ c: UInt8) -> UInt8 {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: preconditionFailure("not a hex digit")
        }
    }
    let digits = Array(text.utf8)
    precondition(digits.count % 2 == 0, "odd number of hex digits")
    return stride(from: 0, to: digits.count, by: 2).map { nibble(digits[$0]) << 4 | nibble(digits[$0 + 1]) }
}

private func hexString(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}
