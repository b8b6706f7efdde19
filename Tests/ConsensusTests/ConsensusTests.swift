// Tests for this module live beside this file.
import XCTest
