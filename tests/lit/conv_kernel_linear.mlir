// RUN: edgeq-opt %s --edgeq-conv-kernel | filecheck %s
// RUN: edgeq-opt %s --edgeq-conv-kernel-avx2 | filecheck %s

// A batch-1 linear layer as torch's nn.Linear imports (matmul by the transposed weights into zeros, then the bias
// add) becomes one dispatch of edgeq_linear_u8s8: 1000 outputs are 63 blocks of 16, 8 workgroups of 8 blocks.
// CHECK:       #[[PACK:.*]] = affine_map<(d0, d1, d2, d3) -> (d1 * 4 + d3, d0 * 16 + d2)>
// CHECK:       hal.executable.source private @edgeq_kernels
// CHECK:         hal.executable.export public @linear_1281x1000 ordinal(0)
// CHECK:           hal.return %[[ONE:.*]], %[[ONE]], %[[ONE]] : index, index, index
// CHECK:         hal.executable.export public @linear_6x5 ordinal(1)
// CHECK:         func.func private @edgeq_linear_u8s8_pooled(memref<1xi8>, memref<1xi8>, memref<1xi32>, memref<1xi32>, i32, i32, i32, index, index, index)
// CHECK:         func.func @linear_1281x1000()
// The scalars: 1281 inputs, 1000 outputs, 8 blocks per workgroup; the grid 8 x 1.
// CHECK-DAG:       %[[GX:.*]] = arith.constant 8 : index
// CHECK-DAG:       %[[GY:.*]] = arith.constant 1 : index
// CHECK:           %[[POOL:.*]] = call @edgeq_pool() : () -> index
// CHECK:           call @edgeq_linear_u8s8_pooled(%0, %1, %2, %3, %c1281_i32, %c1000_i32, %c8_i32, %[[GX]], %[[GY]], %[[POOL]])
// The weights are padded to whole groups of 4 inputs and blocks of 16 outputs with zeros and packed
// [N/16][K/4][16][4]; the sums start at bias - 128 * sum(w), the bias padded with zeros.
// CHECK-LABEL: util.func private @edgeq_linear_1281x1000(
// CHECK:         tensor.pad %{{.*}} low[0, 0] high[3, 8]
// CHECK:         } : tensor<1281x1000xi8> to tensor<1284x1008xi8>
// CHECK:         tensor.pad %{{.*}} low[0] high[8]
// CHECK:         } : tensor<1000xi32> to tensor<1008xi32>
// CHECK:         linalg.generic {indexing_maps = [#[[PACK]], {{.*}} ins(%padded : tensor<1284x1008xi8>) outs(%{{.*}} : tensor<63x321x16x4xi8>)
// CHECK:           arith.muli %{{.*}}, %c-128_i32
// CHECK:         flow.dispatch @edgeq_kernels::@linear_1281x1000(%{{.*}}, %{{.*}}, %{{.*}}) : (tensor<1x1281xi8>, tensor<63x321x16x4xi8>, tensor<1008xi32>) -> tensor<1x1000xi32>
// Without a bias add, the sums start at -128 * sum(w) alone.
// CHECK-LABEL: util.func public @classifier
// CHECK-NOT:     linalg.matmul
// CHECK:         %[[Y:.*]] = util.call @edgeq_linear_1281x1000(%arg0, %{{.*}}, %arg2)
// CHECK:         %[[ZEROS:.*]] = arith.constant dense<0> : tensor<5xi32>
// CHECK:         %[[Z:.*]] = util.call @edgeq_linear_6x5(%arg3, %{{.*}}, %[[ZEROS]])
// A batch of 2, and a matmul from a non-zero init, stay IREE's.
// CHECK:         linalg.matmul ins(%arg4,
// CHECK:         linalg.matmul ins(%arg3,
// CHECK:         util.return %[[Y]], %[[Z]]
util.func public @classifier(%x: tensor<1x1281xi8>, %w: tensor<1000x1281xi8>, %b: tensor<1000xi32>, %x6: tensor<1x6xi8>, %x2: tensor<2x6xi8>, %w6: tensor<6x5xi8>) -> (tensor<1x1000xi32>, tensor<1x5xi32>, tensor<2x5xi32>, tensor<1x5xi32>) {
  %e = tensor.empty() : tensor<1281x1000xi8>
  %wt = linalg.transpose ins(%w : tensor<1000x1281xi8>) outs(%e : tensor<1281x1000xi8>) permutation = [1, 0]
  %c0 = arith.constant 0 : i32
  %ye = tensor.empty() : tensor<1x1000xi32>
  %f = linalg.fill ins(%c0 : i32) outs(%ye : tensor<1x1000xi32>) -> tensor<1x1000xi32>
  %y = linalg.matmul ins(%x, %wt : tensor<1x1281xi8>, tensor<1281x1000xi8>) outs(%f : tensor<1x1000xi32>) -> tensor<1x1000xi32>
  %yb = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%y, %b : tensor<1x1000xi32>, tensor<1000xi32>) outs(%ye : tensor<1x1000xi32>) {
  ^bb0(%p: i32, %q: i32, %o: i32):
    %s = arith.addi %p, %q : i32
    linalg.yield %s : i32
  } -> tensor<1x1000xi32>
  %ze = tensor.empty() : tensor<1x5xi32>
  %zf = linalg.fill ins(%c0 : i32) outs(%ze : tensor<1x5xi32>) -> tensor<1x5xi32>
  %z = linalg.matmul ins(%x6, %w6 : tensor<1x6xi8>, tensor<6x5xi8>) outs(%zf : tensor<1x5xi32>) -> tensor<1x5xi32>
  %e2 = tensor.empty() : tensor<2x5xi32>
  %f2 = linalg.fill ins(%c0 : i32) outs(%e2 : tensor<2x5xi32>) -> tensor<2x5xi32>
  %z2 = linalg.matmul ins(%x2, %w6 : tensor<2x6xi8>, tensor<6x5xi8>) outs(%f2 : tensor<2x5xi32>) -> tensor<2x5xi32>
  %c7 = arith.constant 7 : i32
  %f7 = linalg.fill ins(%c7 : i32) outs(%ze : tensor<1x5xi32>) -> tensor<1x5xi32>
  %z7 = linalg.matmul ins(%x6, %w6 : tensor<1x6xi8>, tensor<6x5xi8>) outs(%f7 : tensor<1x5xi32>) -> tensor<1x5xi32>
  util.return %yb, %z, %z2, %z7 : tensor<1x1000xi32>, tensor<1x5xi32>, tensor<2x5xi32>, tensor<1x5xi32>
}
