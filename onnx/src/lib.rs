//! ONNX import (to be written).
