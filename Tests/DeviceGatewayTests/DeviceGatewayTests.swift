// Tests of the device doors, against real libcoap peers and a real mosquitto broker.
import XCTest
