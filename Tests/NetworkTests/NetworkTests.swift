// Tests of the peer transport over real TCP on loopback.
import XCTest
