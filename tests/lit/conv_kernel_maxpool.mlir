// RUN: edgeq-opt %s --edgeq-conv-kernel | filecheck %s
// RUN: edgeq-opt %s --edgeq-conv-kernel-avx2 | filecheck %s

// ResNet's max pooling (3x3, stride 2, padded by 1 with -128, from a fill of -128) becomes one dispatch of
// edgeq_maxpool3x3s2_i8 on the unpadded input, 64 channels in 8 workgroups.
// CHECK:       hal.executable.export public @maxpool_64x56x56_i128_112x112_t1l1_v128 ordinal(0)
// CHECK:         hal.return %[[ONE:.*]], %[[ONE]], %[[ONE]] : index, index, index
// CHECK:       func.func private @edgeq_maxpool3x3s2_i8_pooled(memref<1xi8>, memref<1xi8>, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, index, index, index)
// The scalars: 64 channels of 112 x 112, padding of 1 row and column with -128, init -128, 56 x 56 out, 8 parts.
// CHECK:         %[[GX:.*]] = arith.constant 8 : index
// CHECK:         call @edgeq_maxpool3x3s2_i8_pooled(%0, %1, %c64_i32, %c112_i32, %c112_i32_0, %c1_i32, %c1_i32_1, %c-128_i32, %c-128_i32_2, %c56_i32, %c56_i32_3, %c8_i32, %[[GX]], %{{.*}}, %{{.*}})
// CHECK-LABEL: util.func private @edgeq_maxpool_64x56x56_i128_112x112_t1l1_v128(
// CHECK:         flow.dispatch @edgeq_kernels::@maxpool_64x56x56_i128_112x112_t1l1_v128(%arg0) : (tensor<1x64x112x112xi8>) -> tensor<1x64x56x56xi8>
// CHECK-LABEL: util.func public @main
// CHECK-NOT:     linalg.pooling_nchw_max
// CHECK:         %[[Y:.*]] = util.call @edgeq_maxpool_64x56x56_i128_112x112_t1l1_v128(%arg0)
// CHECK:         util.return %[[Y]]
util.func public @main(%x: tensor<1x64x112x112xi8>) -> tensor<1x64x56x56xi8> {
  %v = arith.constant -128 : i8
  %i = arith.constant -128 : i8
  %xp = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%a: index, %b: index, %c: index, %d: index):
    tensor.yield %v : i8
  } : tensor<1x64x112x112xi8> to tensor<1x64x114x114xi8>
  %e = tensor.empty() : tensor<1x64x56x56xi8>
  %f = linalg.fill ins(%i : i8) outs(%e : tensor<1x64x56x56xi8>) -> tensor<1x64x56x56xi8>
  %k = tensor.empty() : tensor<3x3xi8>
  %y = linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%xp, %k : tensor<1x64x114x114xi8>, tensor<3x3xi8>) outs(%f : tensor<1x64x56x56xi8>) -> tensor<1x64x56x56xi8>
  util.return %y : tensor<1x64x56x56xi8>
}
