from email_scheduler.cli import main

main()
