import LatchLog
import LatchCrypto
print("latch-bench: skeleton")
