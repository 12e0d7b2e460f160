// RUN: edgeq-opt %s --edgeq-lower-requant | filecheck %s

#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#ch = affine_map<(d0, d1, d2, d3) -> (d1, 0, 0)>
#par4 = ["parallel", "parallel", "parallel", "parallel"]

// clamp(((acc.i64 * b + 2^37) >> 38) - 128, -128, 127).i8, as torch exports it: seven generics on i64.
// CHECK-LABEL: func.func @requant
// CHECK:         %[[B32:.*]] = linalg.generic {{.*}} ins(%arg1 : tensor<8x1x1xi64>) outs(%{{.*}} : tensor<8x1x1xi32>)
// CHECK:           arith.trunci %{{.*}} : i64 to i32
// CHECK:         %[[Y:.*]] = linalg.generic {{.*}} ins(%arg0, %[[B32]] : tensor<1x8x4x4xi32>, tensor<8x1x1xi32>) outs(%{{.*}} : tensor<1x8x4x4xi8>)
// CHECK:           %[[A:.*]] = arith.extsi %{{.*}} : i32 to i64
// CHECK:           %[[M:.*]] = arith.extsi %{{.*}} : i32 to i64
// CHECK:           %[[P:.*]] = arith.muli %[[A]], %[[M]] : i64
// CHECK:           %[[ROUND:.*]] = arith.constant 137438953472 : i64
// CHECK:           %[[R:.*]] = arith.addi %[[P]], %[[ROUND]] : i64
// CHECK:           %[[SHIFT:.*]] = arith.constant 38 : i64
// CHECK:           %[[S:.*]] = arith.shrsi %[[R]], %[[SHIFT]] : i64
// CHECK:           arith.constant 0 : i64
// CHECK:           %[[LO:.*]] = arith.maxsi %[[S]], %{{.*}} : i64
// CHECK:           arith.constant 255 : i64
// CHECK:           %[[HI:.*]] = arith.minsi %[[LO]], %{{.*}} : i64
// CHECK:           %[[T:.*]] = arith.trunci %[[HI]] : i64 to i32
// CHECK:           arith.constant -128 : i32
// CHECK:           %[[Z:.*]] = arith.addi %[[T]], %{{.*}} : i32
// CHECK:           arith.trunci %[[Z]] : i32 to i8
// CHECK-NOT:     linalg.generic
// CHECK:         return %[[Y]]
func.func @requant(%acc: tensor<1x8x4x4xi32>, %b: tensor<8x1x1xi64>) -> tensor<1x8x4x4xi8> {
  %round = arith.constant 137438953472 : i64
  %shift = arith.constant 38 : i64
  %zp = arith.constant -128 : i64
  %lo = arith.constant -128 : i64
  %hi = arith.constant 127 : i64
  %e = tensor.empty() : tensor<1x8x4x4xi64>
  %0 = linalg.generic {indexing_maps = [#id, #id], iterator_types = #par4} ins(%acc : tensor<1x8x4x4xi32>) outs(%e : tensor<1x8x4x4xi64>) {
  ^bb0(%in: i32, %out: i64):
    %x = arith.extsi %in : i32 to i64
    linalg.yield %x : i64
  } -> tensor<1x8x4x4xi64>
  %1 = linalg.generic {indexing_maps = [#id, #ch, #id], iterator_types = #par4} ins(%0, %b : tensor<1x8x4x4xi64>, tensor<8x1x1xi64>) outs(%e : tensor<1x8x4x4xi64>) {
  ^bb0(%in: i64, %m: i64, %out: i64):
    %x = arith.muli %in, %m : i64
    linalg.yield %x : i64
  } -> tensor<1x8x4x4xi64>
  %2 = linalg.generic {indexing_maps = [#id, #id], iterator_types = #par4} ins(%1 : tensor<1x8x4x4xi64>) outs(%e : tensor<1x8x4x4xi64>) {
  ^bb0(%in: i64, %out: i64):
    %x = arith.addi %in, %round : i64
    linalg.yield %x : i64
  } -> tensor<1x8x4x4xi64>
  %3 = linalg.generic {indexing_maps = [#id, #id], iterator_types = #par4} ins(%2 : tensor<1x8x4x4xi64>) outs(%e : tensor<1x8x4x4xi64>) {
  ^bb0(%in: i64, %out: i64):
    %x = arith.shrsi %in, %shift : i64
    linalg.yield %x : i64
  } -> tensor<1x8x4x4xi64>
  %4 = linalg.generic {indexing_maps = [#id, #id], iterator_types = #par4} ins(%3 : tensor<1x8x4x4xi64>) outs(%e : tensor<1x8x4x4xi64>) {
  ^bb0(%in: i64, %out: i64):
    %x = arith.addi %in, %zp : i64
    linalg.yield %x : i64
  } -> tensor<1x8x4x4xi64>
  %5 = linalg.generic {indexing_maps = [#id, #id], iterator_types = #par4} ins(%4 : tensor<1x8x4x4xi64>) outs(%e : tensor<1x8x4x4xi64>) {
  ^bb0(%in: i64, %out: i64):
    %x = arith.maxsi %in, %lo : i64
    %y = arith.minsi %x, %hi : i64
    linalg.yield %y : i64
  } -> tensor<1x8x4x4xi64>
  %e8 = tensor.empty() : tensor<1x8x4x4xi8>
  %6 = linalg.generic {indexing_maps = [#id, #id], iterator_types = #par4} ins(%5 : tensor<1x8x4x4xi64>) outs(%e8 : tensor<1x8x4x4xi8>) {
  ^bb0(%in: i64, %out: i8):
    %x = arith.trunci %in : i64 to i8
    linalg.yield %x : i8
  } -> tensor<1x8x4x4xi8>
  return %6 : tensor<1x8x4x4xi8>
}

// Negative: the rounding term is not 2^(shift-1) (a floor, not a rounding shift) -- not a requantization.
// CHECK-LABEL: func.func @not_rounding_untouched
// CHECK-COUNT-4: linalg.generic
// CHECK:         return
func.func @not_rounding_untouched(%acc: tensor<4xi32>, %b: tensor<4xi64>) -> tensor<4xi8> {
  %round = arith.constant 7 : i64
  %shift = arith.constant 4 : i64
  %lo = arith.constant -128 : i64
  %hi = arith.constant 127 : i64
  %e = tensor.empty() : tensor<4xi64>
  %0 = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%acc : tensor<4xi32>) outs(%e : tensor<4xi64>) {
  ^bb0(%in: i32, %out: i64):
    %x = arith.extsi %in : i32 to i64
    linalg.yield %x : i64
  } -> tensor<4xi64>
  %1 = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%0, %b : tensor<4xi64>, tensor<4xi64>) outs(%e : tensor<4xi64>) {
  ^bb0(%in: i64, %m: i64, %out: i64):
    %x = arith.muli %in, %m : i64
    %r = arith.addi %x, %round : i64
    linalg.yield %r : i64
  } -> tensor<4xi64>
  %2 = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%1 : tensor<4xi64>) outs(%e : tensor<4xi64>) {
  ^bb0(%in: i64, %out: i64):
    %x = arith.shrsi %in, %shift : i64
    %y = arith.maxsi %x, %lo : i64
    %z = arith.minsi %y, %hi : i64
    linalg.yield %z : i64
  } -> tensor<4xi64>
  %e8 = tensor.empty() : tensor<4xi8>
  %3 = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%2 : tensor<4xi64>) outs(%e8 : tensor<4xi8>) {
  ^bb0(%in: i64, %out: i8):
    %x = arith.trunci %in : i64 to i8
    linalg.yield %x : i8
  } -> tensor<4xi8>
  return %3 : tensor<4xi8>
}
