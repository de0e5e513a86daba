import Testing
@testable import LatchCrypto

