import type { AuctionClient } from "./client";
import type { Payment } from "./schema";

export interface PayOptions {
  /** How often, and how far apart, to read the payment back after the sheet closed. */
  polls?: number;
  pollIntervalMs?: number;
}

/**
 * Pays a Payment from `POST /deposits` or `POST /orders/{order_no}/pay`: its
 * `params` go to wx.requestPayment as they come, then the payment is read back
 * until the server has WeChat's word (CONTRACT Payments: poll after paying).
 * A payment without params (already paid or closed) is only read back.
 */
export async function pay(client: AuctionClient, payment: Payment, options: PayOptions = {}): Promise<Payment> {
  if (payment.params) {
    await client.transport.requestPayment(payment.params, payment);
  }
  const polls = options.polls ?? 10;
  let current = payment;
  for (let poll = 0; poll < polls; poll++) {
    current = await client.get("/api/v1/payments/{out_trade_no}", { path: { out_trade_no: payment.out_trade_no } });
    if (current.status !== "created") return current;
    await new Promise((done) => setTimeout(done, options.pollIntervalMs ?? 1000));
  }
  return current;
}
